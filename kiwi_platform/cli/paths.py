"""Checks on output paths given on the command line, before any work starts."""

from __future__ import annotations

from pathlib import Path

from kiwi_platform.errors import KiwiUserError


def output_folder(path: Path) -> Path:
    """An --out folder: fine if absent (created) or a folder; an existing file is a user error."""
    if path.exists() and not path.is_dir():
        raise KiwiUserError(f"{path} exists and is not a folder; choose another --out")
    return path
