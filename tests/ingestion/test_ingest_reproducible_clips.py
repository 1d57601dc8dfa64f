"""Clips are byte-reproducible: the same frames and settings give the same file, whenever written.

A clip's sha256 feeds the normalized table's hash and the DVC md5 of its folder; if writing on
another day (or in another KIWI_HOME) changed the bytes, every re-decode would be a new data
version. The clock is moved forward between writes, as a later run would see it.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from kiwi_platform.lib.files import sha256_file
from kiwi_platform.media.clips import write_clip
from kiwi_platform.media.normalize import normalize_media
from tests.ingestion.ingest_media import make_image, make_video, pattern

A_YEAR = 366 * 24 * 3600


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the wall clock forward by `seconds` for everything that asks `time.time()`."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


def test_writing_the_same_clip_twice_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_clip with the same frames, fps and header gives byte-identical files a year apart,
    whatever order the header keys were given in."""
    frames = [pattern(i, 96, 64, seed=5) for i in range(4)]
    first = write_clip(tmp_path / "a.kclip", frames, fps=16.0, meta={"source_sha256": "ab", "num_frames": 4})
    later(monkeypatch, A_YEAR)
    second = write_clip(tmp_path / "b.kclip", frames, fps=16.0, meta={"num_frames": 4, "source_sha256": "ab"})
    assert (tmp_path / "a.kclip").read_bytes() == (tmp_path / "b.kclip").read_bytes()
    assert first["sha256"] == second["sha256"] == sha256_file(tmp_path / "b.kclip")


@pytest.mark.parametrize("kind", ["video", "image"])
def test_normalizing_the_same_file_again_gives_identical_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Re-decoding the same video (or image) with the same settings, later, reproduces the clip byte for byte."""
    if kind == "video":
        src = make_video(tmp_path / "src.mp4", 12, width=128, height=96, seed=8)
    else:
        src = make_image(tmp_path / "src.jpg", 128, 96, seed=8)
    settings = {"num_frames": 9, "max_area": 96 * 64, "fps": 16.0}
    first = normalize_media(src, tmp_path / "one.kclip", **settings)
    later(monkeypatch, A_YEAR + 3)
    second = normalize_media(src, tmp_path / "two.kclip", **settings)
    assert first["sha256"] == second["sha256"]
    assert (tmp_path / "one.kclip").read_bytes() == (tmp_path / "two.kclip").read_bytes()


def test_clip_members_carry_no_time_or_host_details(tmp_path: Path) -> None:
    """What `unzip -l` shows is fixed: 1980-01-01 dates, mode 0644, Unix creator, frames in order then meta.json."""
    write_clip(tmp_path / "c.kclip", [pattern(i, 64, 32, 0) for i in range(3)], fps=1.0)
    with zipfile.ZipFile(tmp_path / "c.kclip") as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["frames/00000.jpg", "frames/00001.jpg", "frames/00002.jpg", "meta.json"]
    assert {(i.date_time, i.external_attr >> 16, i.create_system) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, 3)
    }
