"""Probing: the facts recorded for every media file (codec, size, fps, frames, duration) are true."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.media.probe import probe_media
from tests.ingestion.ingest_media import Kit, make_video


def decode_facts(path: Path) -> dict:
    """Independent ground truth: decode every frame and read sizes and timestamps off the frames."""
    times, sizes = [], set()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            sizes.add((frame.width, frame.height))
    times.sort()
    step = float(np.median(np.diff(times)))
    return {"frames": len(times), "sizes": sizes, "fps": 1.0 / step, "duration": times[-1] - times[0] + step}


@pytest.fixture(scope="module")
def demo_truth(demo_videos: list[Path]) -> dict[Path, dict]:
    return {p: decode_facts(p) for p in demo_videos}


def test_demo_clips_probe_like_a_full_decode(demo_videos: list[Path], demo_truth: dict[Path, dict]) -> None:
    """The probe (demux only) reports the frame count, size, fps and duration a full decode sees."""
    for path in demo_videos:
        info, truth = probe_media(path), demo_truth[path]
        assert info.kind == "video"
        assert info.frames == truth["frames"], path.name
        assert {(info.width, info.height)} == truth["sizes"], path.name
        assert info.fps == pytest.approx(truth["fps"], rel=1e-3), path.name
        assert info.duration == pytest.approx(truth["duration"], abs=0.5 / info.fps), path.name
        assert info.size_bytes == path.stat().st_size


def test_demo_clips_match_their_documented_facts(demo_videos: list[Path], demo_truth: dict[Path, dict]) -> None:
    """The two upstream demo clips are the 1280x720/101/20fps and 832x480/81/16fps H.264 files the README lists."""
    seen = set()
    for path in demo_videos:
        info = probe_media(path)
        assert info.codec == "h264"
        assert b"avc1" in path.read_bytes()[:4096] or b"avc1" in path.read_bytes()[-65536:]  # H.264 sample entry
        seen.add((info.width, info.height, info.frames, round(info.fps)))
    assert seen == {(1280, 720, 101, 20), (832, 480, 81, 16)}


@pytest.mark.parametrize("frames,fps,size", [(8, 16, (96, 64)), (40, 25, (64, 96))])
def test_generated_clips_probe_exactly(tmp_path: Path, frames: int, fps: int, size: tuple[int, int]) -> None:
    """Clips we encode ourselves come back with the frame count, fps, size and duration we wrote."""
    path = make_video(tmp_path / "clip.mp4", frames, width=size[0], height=size[1], fps=fps)
    info = probe_media(path)
    assert (info.kind, info.codec, info.width, info.height) == ("video", "h264", *size)
    assert info.frames == frames == decode_facts(path)["frames"]
    assert info.fps == pytest.approx(fps)
    assert info.duration == pytest.approx(frames / fps, abs=0.5 / fps)


def test_images_probe_as_one_frame(demo_dir: Path) -> None:
    """JPEGs (the demo source and reference images) probe as 1-frame images of their pixel size."""
    for path in [*demo_dir.glob("image/source/*.jpg"), *demo_dir.glob("video/reference/*.jpg")]:
        info = probe_media(path)
        with Image.open(path) as img:
            assert (info.width, info.height) == img.size
        assert (info.kind, info.codec, info.frames, info.fps, info.duration) == ("image", "jpeg", 1, 0.0, 0.0)


def test_png_probes_with_its_own_codec(tmp_path: Path) -> None:
    """Image codec is read from the bytes, so a PNG reports png."""
    path = tmp_path / "x.png"
    Image.new("RGB", (33, 17), "red").save(path)
    info = probe_media(path)
    assert (info.kind, info.codec, info.width, info.height, info.frames) == ("image", "png", 33, 17, 1)


def test_probe_rejects_bad_bytes_with_a_reason(tmp_path: Path) -> None:
    """Probing a bad file raises RowRejected carrying the reason code, not a raw library error."""
    empty, text = tmp_path / "e.mp4", tmp_path / "t.mp4"
    empty.write_bytes(b"")
    text.write_bytes(b"just text\n" * 50)
    with pytest.raises(RowRejected) as e1:
        probe_media(empty)
    with pytest.raises(RowRejected) as e2:
        probe_media(text)
    assert (e1.value.reason, e2.value.reason) == ("empty_file", "not_media")


def test_truncated_mp4_is_caught_with_index_at_either_end(kit: Kit) -> None:
    """Half a real MP4 is truncated_video both ways: index-at-end files no longer open at all; faststart
    files (index first) still open but hold fewer frames than their index declares."""
    plain, faststart = kit.root / "trunc_plain.mp4", kit.root / "trunc_faststart.mp4"
    with pytest.raises(av.error.FFmpegError):
        av.open(str(plain))
    with av.open(str(faststart)) as container:
        declared = container.streams.video[0].frames
    assert declared == 81
    with pytest.raises(RowRejected) as e_plain:
        probe_media(plain)
    with pytest.raises(RowRejected) as e_fast:
        probe_media(faststart)
    assert (e_plain.value.reason, e_fast.value.reason) == ("truncated_video", "truncated_video")
    assert "81" in e_fast.value.message and e_fast.value.path == str(faststart)
