"""Clips stored as near-lossless H.264 ("kiwi-clip/2", docs/clips.md; `clip_storage: video`): close to the frames they were
given, smaller than JPEG frames, byte-identical on every write, readable by index and through a
shard, and a damaged clip is a clear error naming it. Old JPEG-frame clips stay readable."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.lib import shards
from kiwi_platform.media import clip_video
from kiwi_platform.media.clips import FORMAT_JPEG, FORMAT_VIDEO, clip_header, read_clip, write_clip
from kiwi_platform.media.normalize import normalize_media
from tests.ingestion.ingest_media import make_video, pattern

REPO = Path(__file__).resolve().parents[2]
# Measured on these frames (benchmarks/clip_storage.py has the wider table): 45.0 dB for the video
# clip, 45.2 dB for JPEG q95 at 2.3x the bytes. The bound leaves ~1 dB for other x264 builds.
MIN_PSNR_DB = 44.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def frames(count: int = 17, width: int = 224, height: int = 128, seed: int = 3) -> list[np.ndarray]:
    return [pattern(i, width, height, seed) for i in range(count)]


def test_round_trip_is_near_lossless_and_smaller_than_jpeg_frames(tmp_path: Path) -> None:
    """A 17x128x224 clip written as video decodes to within 44 dB PSNR of the frames given (every
    frame above 42 dB), no worse than 1 dB below JPEG q95 frames, in under half their bytes."""
    given = frames()
    video = write_clip(tmp_path / "v.kclip", given, fps=16.0, storage="video")
    jpeg = write_clip(tmp_path / "j.kclip", given, fps=16.0, storage="jpeg")
    got, got_jpeg = read_clip(tmp_path / "v.kclip"), read_clip(tmp_path / "j.kclip")
    assert video["format"] == FORMAT_VIDEO and jpeg["format"] == FORMAT_JPEG
    assert got.shape == (17, 128, 224, 3) and got.dtype == np.uint8
    assert psnr(got, np.stack(given)) > MIN_PSNR_DB
    assert min(psnr(a, b) for a, b in zip(got, given)) > MIN_PSNR_DB - 2
    assert psnr(got, np.stack(given)) > psnr(got_jpeg, np.stack(given)) - 1.0
    assert (tmp_path / "v.kclip").stat().st_size < 0.5 * (tmp_path / "j.kclip").stat().st_size


_WRITE = """
import sys
from pathlib import Path
from kiwi_platform.media.clips import write_clip
from kiwi_platform.media.normalize import normalize_media
from tests.ingestion.ingest_media import pattern
out = Path(sys.argv[1])
write_clip(out / "w.kclip", [pattern(i, 96, 64, 5) for i in range(9)], fps=16.0, meta={"k": 1}, storage="video")
normalize_media(Path(sys.argv[2]), out / "n.kclip", num_frames=9, max_area=96 * 64, fps=16.0, storage="video")
"""


def test_two_processes_write_identical_bytes(tmp_path: Path) -> None:
    """The same frames encoded in two separate processes, whose heaps start with different garbage
    (MALLOC_PERTURB_), give byte-identical clips, for write_clip and for normalize_media: x264's
    output must depend on the frames and pinned settings only, not on memory or core count."""
    src = make_video(tmp_path / "src.mp4", 12, width=128, height=96, seed=8)
    outs = []
    for perturb in ("0", "170"):
        out = tmp_path / f"p{perturb}"
        out.mkdir()
        env = {**os.environ, "MALLOC_PERTURB_": perturb, "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, "-c", _WRITE, str(out), str(src)], check=True, cwd=REPO, env=env)
        outs.append({name: (out / name).read_bytes() for name in ("w.kclip", "n.kclip")})
    assert outs[0] == outs[1]
    assert clip_header(tmp_path / "p0" / "n.kclip")["format"] == FORMAT_VIDEO


def test_index_subsets_come_back_in_the_order_asked(tmp_path: Path) -> None:
    """read_clip(path, indices) on a video clip returns exactly those frames, in that order, with
    repeats, equal to the same frames of a full read; an index outside the clip is an IndexError."""
    write_clip(tmp_path / "c.kclip", frames(12, 96, 64), fps=16.0, storage="video")
    full = read_clip(tmp_path / "c.kclip")
    for wanted in ([11, 0, 5, 5], [0], [3, 2, 1], [11]):
        np.testing.assert_array_equal(read_clip(tmp_path / "c.kclip", wanted), full[wanted])
    assert not np.array_equal(full[0], full[11])
    with pytest.raises(IndexError):
        read_clip(tmp_path / "c.kclip", [12])
    with pytest.raises(IndexError):
        read_clip(tmp_path / "c.kclip", [-1])


def test_normalize_writes_jpeg_frames_by_default_and_video_on_request(tmp_path: Path) -> None:
    """normalize_media stores kiwi-clip/1 (JPEG frames) by default and kiwi-clip/2 (one video member) when
    storage="video" is asked, and both read back as the same frames within JPEG's error of each other."""
    src = make_video(tmp_path / "src.mp4", 10, width=96, height=64, seed=2)
    settings = {"num_frames": 8, "max_area": 10**9, "fps": 16.0}
    video = normalize_media(src, tmp_path / "v.kclip", **settings, storage="video")
    jpeg = normalize_media(src, tmp_path / "j.kclip", **settings)
    assert (video["format"], jpeg["format"]) == (FORMAT_VIDEO, FORMAT_JPEG)
    with zipfile.ZipFile(tmp_path / "v.kclip") as zf:
        assert zf.namelist() == [clip_video.MEMBER, "meta.json"]
    assert psnr(read_clip(tmp_path / "v.kclip"), read_clip(tmp_path / "j.kclip")) > 35


def test_old_jpeg_clip_still_reads(tmp_path: Path) -> None:
    """A kiwi-clip/1 clip (JPEG frames, as batches normalized before hold) reads through the same
    read_clip / clip_header, by index too."""
    given = frames(5, 64, 32)
    write_clip(tmp_path / "old.kclip", given, fps=8.0, storage="jpeg")
    with zipfile.ZipFile(tmp_path / "old.kclip") as zf:
        assert zf.namelist()[0] == "frames/00000.jpg"
    assert clip_header(tmp_path / "old.kclip")["format"] == FORMAT_JPEG
    got = read_clip(tmp_path / "old.kclip", [4, 1])
    assert got.shape == (2, 32, 64, 3) and psnr(got[0], given[4]) > 35 and psnr(got[1], given[1]) > 35


def test_video_clip_reads_through_a_shard_reference(tmp_path: Path) -> None:
    """A video clip packed into a shard reads by `shard.zip#member` exactly as from its own file."""
    paths = {}
    for i in range(3):
        paths[f"c{i}.kclip"] = tmp_path / f"c{i}.kclip"
        write_clip(paths[f"c{i}.kclip"], frames(6, 64, 32, seed=i), fps=8.0, storage="video")
    placed = shards.write_shards(tmp_path / "shards", paths, per_shard=8)
    ref = shards.member_ref(placed["c1.kclip"], "c1.kclip")
    assert clip_header(ref) == clip_header(paths["c1.kclip"])
    np.testing.assert_array_equal(read_clip(ref, [5, 0]), read_clip(paths["c1.kclip"], [5, 0]))
    np.testing.assert_array_equal(read_clip(ref), read_clip(paths["c1.kclip"]))


def _with_video(src: Path, dst: Path, video: bytes) -> None:
    """A copy of clip `src` whose video member is `video` (a valid ZIP, CRC matching)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        zout.writestr(clip_video.MEMBER, video)
        zout.writestr("meta.json", zin.read("meta.json"))


def test_damaged_video_is_a_clear_error_naming_the_clip(tmp_path: Path) -> None:
    """A clip whose video is cut short, garbled or bit-flipped, or a clip file cut in half, raises a
    ValueError that names the clip, never a crash or silently fewer/wrong-size frames."""
    good = tmp_path / "good.kclip"
    write_clip(good, frames(12, 96, 64), fps=16.0, storage="video")
    with zipfile.ZipFile(good) as zf:
        video = zf.read(clip_video.MEMBER)
    damaged = {
        "short.kclip": lambda p: _with_video(good, p, video[: len(video) // 3]),
        "garbage.kclip": lambda p: _with_video(
            good, p, bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8))
        ),
        "empty.kclip": lambda p: _with_video(good, p, b""),
        "cut.kclip": lambda p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
    }
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # inside the stored video member: its CRC no longer matches
    damaged["flipped.kclip"] = lambda p: p.write_bytes(bytes(raw))
    for name, make in damaged.items():
        make(tmp_path / name)
        with pytest.raises(ValueError, match=name):
            read_clip(tmp_path / name)


def test_video_writer_refuses_bad_frames_and_leaves_nothing(tmp_path: Path) -> None:
    """Frames of changing size, the wrong dtype, none at all, or a source that fails midway: an
    error, and no clip or temp file left behind (the video writer keeps the JPEG writer's promises)."""

    def failing():
        yield pattern(0, 64, 32, 0)
        raise RuntimeError("decoder died")

    with pytest.raises(ValueError):
        write_clip(tmp_path / "a.kclip", [pattern(0, 64, 32, 0), pattern(0, 96, 64, 0)], fps=1.0, storage="video")
    with pytest.raises(ValueError):
        write_clip(tmp_path / "b.kclip", [np.zeros((32, 32, 3), np.float32)], fps=1.0, storage="video")
    with pytest.raises(ValueError):
        write_clip(tmp_path / "c.kclip", [], fps=1.0, storage="video")
    with pytest.raises(RuntimeError, match="decoder died"):
        write_clip(tmp_path / "d.kclip", failing(), fps=1.0, storage="video")
    with pytest.raises(ValueError, match="storage"):
        write_clip(tmp_path / "e.kclip", frames(1), fps=1.0, storage="webp")
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_and_single_frames_round_trip(tmp_path: Path) -> None:
    """4:4:4 video takes any frame size: a 33x17 clip and a one-frame 8x8 clip (an image) read back
    at their size and close to the frames given."""
    for name, given in (("odd.kclip", frames(3, 33, 17)), ("one.kclip", frames(1, 8, 8))):
        write_clip(tmp_path / name, given, fps=0.0, storage="video")
        got = read_clip(tmp_path / name)
        assert got.shape == (len(given), *given[0].shape)
        assert psnr(got, np.stack(given)) > 40


def test_no_encoder_build_string_in_the_stream(tmp_path: Path) -> None:
    """The stored stream carries no x264 version/options SEI, so a rebuild of the library that codes
    the same bits does not change the file; the stream still decodes as plain H.264."""
    write_clip(tmp_path / "c.kclip", frames(4, 64, 32), fps=8.0, storage="video")
    with zipfile.ZipFile(tmp_path / "c.kclip") as zf:
        video = zf.read(clip_video.MEMBER)
    assert b"x264" not in video and video.startswith(b"\x00\x00\x00\x01")
    header = clip_header(tmp_path / "c.kclip")
    assert clip_video.decode(io.BytesIO(video).read, "c", header, [3]).shape == (1, 32, 64, 3)
