"""Small real media for the ingestion tests: H.264 clips and JPEGs made with PyAV/Pillow, plus
bad files (empty, text named .mp4, truncated demo clips, corrupt JPEG, a symlink leading out).

Everything lives in one session folder (`kit`) so each test only writes a manifest beside it:
manifest paths are relative to the manifest's folder, and must stay inside it.
"""

from __future__ import annotations

import csv
import itertools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.ingestion.ingest_media import HEADER, Kit, cut_in_half, make_image, make_video, remux_faststart


@pytest.fixture(scope="session")
def demo_videos(demo_dir: Path) -> list[Path]:
    videos = sorted((demo_dir / "video" / "source").glob("*.mp4"))
    assert len(videos) == 2, f"expected the two demo clips in {demo_dir}"
    return videos


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory, demo_videos: list[Path], demo_dir: Path) -> Kit:
    """Good and bad media files, made once per session (about a second)."""
    root = tmp_path_factory.mktemp("kit")
    make_video(root / "a.mp4", 24, seed=1)
    make_video(root / "a_tgt.mp4", 24, seed=2)
    shutil.copyfile(root / "a.mp4", root / "a_copy.mp4")
    shutil.copyfile(root / "a_tgt.mp4", root / "a_tgt_copy.mp4")
    make_video(root / "b.mp4", 24, seed=3)
    make_video(root / "b_tgt.mp4", 24, seed=4)
    make_video(root / "wide.mp4", 24, width=128, height=64, seed=5)
    make_video(root / "long.mp4", 32, seed=6)
    make_video(root / "short.mp4", 8, seed=7)
    make_video(root / "short_tgt.mp4", 8, seed=8)
    make_image(root / "img_src.jpg", seed=1)
    make_image(root / "img_tgt.jpg", seed=2)
    make_image(root / "ref.jpg", 64, 64, seed=3)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_bytes(b"prompt,src_video,tgt_video\nthis is a CSV, not a video\n" * 20)
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not the rest of a JPEG" * 10)
    jpeg = (demo_dir / "video" / "reference" / "reco_replace_088301.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    real = demo_videos[1]  # 832x480, moov at the end of the file like most camera/encoder output
    cut_in_half(real, root / "trunc_plain.mp4")
    faststart = remux_faststart(real, tmp_path_factory.mktemp("faststart") / "fs.mp4")
    cut_in_half(faststart, root / "trunc_faststart.mp4")
    outside = make_video(tmp_path_factory.mktemp("outside") / "secret.mp4", 24, seed=1)
    (root / "link_out.mp4").symlink_to(outside)
    return Kit(root=root, outside=outside)


_names = itertools.count()


@pytest.fixture
def write_manifest(kit: Kit) -> Callable[..., Path]:
    """Write rows (tuples in `header` order) as a properly quoted CSV into the kit folder."""

    def write(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
        path = kit.root / f"manifest_{next(_names)}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write
