"""Edited videos are the user's files: written with the permissions their umask gives, not 0600."""

from __future__ import annotations

import os

import numpy as np

from model.video_io import write_video


def test_written_video_follows_the_umask(tmp_path):
    """With umask 022 the output mp4 is 0644 (others can read it), like any file the user creates."""
    old = os.umask(0o022)
    try:
        path = write_video(np.zeros((5, 32, 32, 3), np.uint8), tmp_path / "out.mp4", fps=8)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name != "out.mp4"]  # no temp file left beside it
