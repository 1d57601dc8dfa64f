"""Normalization: first N frames, area cap, sides floored to 32, center crop, stored as a clip file."""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.quarantine import RowRejected
from kiwi_platform.media.clips import clip_header, read_clip, write_clip
from kiwi_platform.media.decode import output_size
from kiwi_platform.media.normalize import normalize_media
from tests.ingestion.ingest_media import make_image, make_video, pattern


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def reference_first_frame(path: Path, max_area: int) -> np.ndarray:
    """Frame 0 decoded at full size by PyAV, then resized with OpenCV (area filter) and center-cropped by hand."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    h, w = frame.shape[:2]
    rw, rh, cw, ch = output_size(w, h, max_area)  # the size math itself is checked by the output_size tests
    resized = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_AREA) if (rw, rh) != (w, h) else frame
    top, left = (rh - ch) // 2, (rw - cw) // 2
    return resized[top : top + ch, left : left + cw]


def test_output_size_keeps_full_hd_width_and_floors_height() -> None:
    """1280x720 under a 1280*720 cap is not resized; 720 floors to 704 (22 * 32) by center crop."""
    assert output_size(1280, 720, 1280 * 720) == (1280, 720, 1280, 704)
    assert output_size(832, 480, 1280 * 720) == (832, 480, 832, 480)  # small clips are never upscaled


@pytest.mark.parametrize(
    "width,height,cap",
    [
        (1280, 720, 832 * 480),
        (1920, 1080, 1280 * 720),
        (3840, 2160, 1280 * 720),
        (720, 1280, 480 * 832),
        (1000, 333, 256 * 256),
    ],
)
def test_output_size_caps_area_and_keeps_aspect(width: int, height: int, cap: int) -> None:
    """Large inputs are scaled down to about the area cap with their aspect ratio, then floored to 32s."""
    rw, rh, cw, ch = output_size(width, height, cap)
    assert rw * rh <= cap * 1.01 and rw * rh >= cap * 0.98  # resized to the cap, not far under it
    assert abs(rw / rh - width / height) < 0.01 * (width / height)
    assert cw % 32 == 0 and ch % 32 == 0
    assert 0 <= rw - cw < 32 and 0 <= rh - ch < 32  # the crop takes only the remainder
    assert cw * ch <= cap


def test_output_size_full_hd_to_720p_is_exact() -> None:
    """1920x1080 at a 1280*720 cap becomes exactly 1280x720 (then 1280x704), no float off-by-one."""
    assert output_size(1920, 1080, 1280 * 720) == (1280, 720, 1280, 704)


def test_output_size_never_exceeds_the_area_cap() -> None:
    """docs/contract.md §1.3: the area is at most the cap. Rounding both sides up breaks it, e.g. 560x1747 at 1280*720
    gives a 544x1696 crop (922,624 px > 921,600)."""
    over = [
        (w, h, cap)
        for cap in (1280 * 720, 1024 * 1024, 640 * 360)
        for w in range(32, 4000, 3)
        for h in range(32, 2400, 5)
        if (lambda s: s[2] * s[3] > cap)(output_size(w, h, cap))
    ]
    assert over == []


@pytest.mark.parametrize("num_frames", [1, 8, 24])
def test_normalized_clip_has_n_frames_of_the_expected_size(tmp_path: Path, num_frames: int) -> None:
    """A 40-frame 96x64 clip normalized to N frames under a small cap stores exactly N frames of the
    crop size; the returned header is the stored one plus the sha256 of the file as written."""
    src = make_video(tmp_path / "src.mp4", 40, width=96, height=64)
    cap = 80 * 56
    header = normalize_media(src, tmp_path / "out.kclip", num_frames=num_frames, max_area=cap, fps=16.0)
    _, _, cw, ch = output_size(96, 64, cap)
    frames = read_clip(tmp_path / "out.kclip")
    assert frames.shape == (num_frames, ch, cw, 3) and frames.dtype == np.uint8
    assert (header["frames"], header["width"], header["height"], header["fps"]) == (num_frames, cw, ch, 16.0)
    stored = dict(header)
    assert stored.pop("sha256") == sha256_file(tmp_path / "out.kclip")
    assert clip_header(tmp_path / "out.kclip") == stored


def test_normalized_frames_follow_the_source_order(tmp_path: Path) -> None:
    """Frame i of the clip is source frame i (first N from frame 0, none skipped or repeated)."""
    src = make_video(tmp_path / "src.mp4", 12, width=96, height=64, seed=9)
    normalize_media(src, tmp_path / "c.kclip", num_frames=10, max_area=10**9, fps=16.0)
    clip = read_clip(tmp_path / "c.kclip")
    for i in range(10):
        expected = pattern(i, 96, 64, seed=9)
        scores = [psnr(clip[i], pattern(j, 96, 64, seed=9)) for j in range(12)]
        assert int(np.argmax(scores)) == i, f"frame {i} looks like source frame {int(np.argmax(scores))}"
        assert psnr(clip[i], expected) > 25


@pytest.mark.parametrize("cap", [1280 * 720, 320 * 180])
def test_demo_clip_first_frame_matches_resized_source(tmp_path: Path, demo_videos: list[Path], cap: int) -> None:
    """Frame 0 of each normalized demo clip matches the source's frame 0 resized and cropped the same way (PSNR > 30 dB)."""
    for src in demo_videos:
        out = tmp_path / f"{src.stem[:8]}.kclip"
        header = normalize_media(src, out, num_frames=3, max_area=cap, fps=20.0)
        expected = reference_first_frame(src, cap)
        got = read_clip(out, [0])[0]
        assert got.shape == expected.shape == (header["height"], header["width"], 3)
        assert psnr(got, expected) > 30, src.name
    if cap == 1280 * 720:
        sizes = {clip_header(p)["width"] * 10000 + clip_header(p)["height"] for p in tmp_path.glob("*.kclip")}
        assert sizes == {1280 * 10000 + 704, 832 * 10000 + 480}


def test_image_normalizes_to_one_frame(tmp_path: Path, demo_dir: Path) -> None:
    """An image becomes a 1-frame clip, resized under the cap and cropped to 32s, close to the original."""
    src = next(demo_dir.glob("image/source/*.jpg"))
    cap = 256 * 256
    header = normalize_media(src, tmp_path / "img.kclip", num_frames=81, max_area=cap, fps=16.0)
    clip = read_clip(tmp_path / "img.kclip")
    with Image.open(src) as img:
        w, h = img.size
        rw, rh, cw, ch = output_size(w, h, cap)
        ref = np.asarray(img.convert("RGB").resize((rw, rh), Image.Resampling.LANCZOS))
    top, left = (rh - ch) // 2, (rw - cw) // 2
    assert clip.shape == (1, ch, cw, 3)
    assert header["frames"] == 1 and header["source_kind"] == "image"
    assert psnr(clip[0], ref[top : top + ch, left : left + cw]) > 30


def test_read_clip_returns_the_requested_indices(tmp_path: Path) -> None:
    """read_clip(path, indices) returns exactly those frames, in the order asked, and rejects out-of-range ones."""
    src = make_video(tmp_path / "src.mp4", 16, width=96, height=64, seed=4)
    normalize_media(src, tmp_path / "c.kclip", num_frames=16, max_area=10**9, fps=16.0)
    full = read_clip(tmp_path / "c.kclip")
    picked = read_clip(tmp_path / "c.kclip", [15, 0, 7, 7])
    assert np.array_equal(picked, full[[15, 0, 7, 7]])
    assert not np.array_equal(full[0], full[15])
    with pytest.raises(IndexError):
        read_clip(tmp_path / "c.kclip", [16])


def test_too_short_video_leaves_no_clip(tmp_path: Path) -> None:
    """Asking for more frames than the video holds quarantines it (too_few_frames) and writes nothing."""
    src = make_video(tmp_path / "src.mp4", 8)
    out = tmp_path / "clips" / "c.kclip"
    with pytest.raises(RowRejected) as err:
        normalize_media(src, out, num_frames=9, max_area=10**9, fps=16.0)
    assert err.value.reason == "too_few_frames"
    assert list(out.parent.iterdir()) == []


def test_failing_frame_source_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    """A frame generator that fails midway leaves neither the clip nor a temp file, and an older clip intact."""
    out = tmp_path / "c.kclip"
    write_clip(out, [pattern(0, 64, 32, 0)], fps=1.0)
    before = out.read_bytes()

    def frames():
        yield pattern(0, 96, 64, 1)
        yield pattern(1, 96, 64, 1)
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        write_clip(out, frames(), fps=16.0)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.kclip"]
    with pytest.raises(RuntimeError):
        write_clip(tmp_path / "new.kclip", frames(), fps=16.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.kclip"]


def test_write_clip_rejects_bad_frames(tmp_path: Path) -> None:
    """Frames of changing size or the wrong dtype are refused before anything is written."""
    with pytest.raises(ValueError):
        write_clip(tmp_path / "a.kclip", [pattern(0, 64, 32, 0), pattern(0, 96, 64, 0)], fps=1.0)
    with pytest.raises(ValueError):
        write_clip(tmp_path / "b.kclip", [np.zeros((32, 32, 3), np.float32)], fps=1.0)
    with pytest.raises(ValueError):
        write_clip(tmp_path / "c.kclip", [], fps=1.0)
    assert list(tmp_path.iterdir()) == []


def test_generated_image_keeps_small_size(tmp_path: Path) -> None:
    """A small image (under the cap) keeps its pixels: 96x64 stays 96x64 and matches closely."""
    src = make_image(tmp_path / "s.jpg", 96, 64, seed=2)
    normalize_media(src, tmp_path / "s.kclip", num_frames=81, max_area=1280 * 720, fps=0.0)
    clip = read_clip(tmp_path / "s.kclip")
    assert clip.shape == (1, 64, 96, 3)
    assert psnr(clip[0], np.asarray(Image.open(src).convert("RGB"))) > 35
