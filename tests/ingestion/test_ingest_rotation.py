"""Display rotation: a clip is probed, compared and normalized as a player shows it.

The fixtures are real MP4s whose display matrix (`tkhd`) PyAV writes (`set_display_rotation`),
like a phone's portrait clip, and JPEGs with an EXIF orientation tag. Expected pictures come from
`displayed()`, PyAV's documented meaning of the matrix, not from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.raw_table import raw_table, store_accepted_media
from kiwi_platform.ingestion.validate import validate_manifest
from kiwi_platform.media.clips import clip_header, read_clip, write_clip
from kiwi_platform.media.normalize import normalize_media
from kiwi_platform.media.probe import probe_media
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import MIN_FRAMES, Kit, displayed, make_image, make_video, pattern

# (degrees counterclockwise, hflip, vflip): the four turns and the four mirrored ones (all 8 EXIF cases).
ORIENTATIONS = [(0, True, False), (90, False, False), (-90, False, False), (180, False, False)]
ORIENTATIONS += [(0, False, True), (90, True, False), (-90, True, False), (90, False, True)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("degrees", [-90, 90, 180])
def test_probe_reports_the_displayed_size(tmp_path: Path, degrees: int) -> None:
    """A 96x64 clip marked -90/90 degrees probes as 64x96 (as players show it); 180 keeps 96x64."""
    path = make_video(tmp_path / "r.mp4", 4, width=96, height=64, rotation=(degrees, False, False))
    info = probe_media(path)
    expected = (96, 64) if degrees == 180 else (64, 96)
    assert (info.width, info.height) == expected
    assert abs(info.rotation) == abs(degrees) and info.frames == 4


@pytest.mark.parametrize("orientation", ORIENTATIONS, ids=lambda o: f"{o[0]}deg-h{int(o[1])}-v{int(o[2])}")
def test_rotated_video_normalizes_upright(tmp_path: Path, orientation: tuple[int, bool, bool]) -> None:
    """Every frame of a clip with a display matrix is stored as displayed: turned and mirrored like a
    player does, at the displayed size (a -90 degree phone clip is portrait, not sideways)."""
    src = make_video(tmp_path / "r.mp4", 5, width=96, height=64, seed=4, rotation=orientation)
    header = normalize_media(src, tmp_path / "r.kclip", num_frames=5, max_area=10**9, fps=16.0)
    clip = read_clip(tmp_path / "r.kclip")
    expected = [displayed(pattern(i, 96, 64, 4), *orientation) for i in range(5)]
    assert clip.shape == (5, *expected[0].shape)
    assert (header["height"], header["width"]) == expected[0].shape[:2]
    for i in range(5):
        assert psnr(clip[i], expected[i]) > 30, f"frame {i} is not oriented as displayed"


def test_rotated_video_is_area_capped_at_its_displayed_shape(tmp_path: Path) -> None:
    """The area cap and the 32-multiple crop apply to the displayed (portrait) shape: 96x64 marked
    -90 degrees under a 48x72 cap becomes a 32x64 (w x h) clip, not 64x32."""
    src = make_video(tmp_path / "r.mp4", 3, width=96, height=64, rotation=(-90, False, False))
    header = normalize_media(src, tmp_path / "r.kclip", num_frames=3, max_area=48 * 72, fps=16.0)
    assert (header["width"], header["height"]) == (32, 64)


def run(path: Path):
    return validate_manifest(read_manifest(path), min_frames=MIN_FRAMES)


def test_rotated_source_with_unrotated_target_is_a_size_mismatch(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """A portrait phone clip (stored 96x64, -90 degrees) paired with a landscape 96x64 target is not
    aligned: quarantined as size_mismatch instead of accepted because the stored sizes agree."""
    make_video(kit.root / "portrait_src.mp4", 24, seed=1, rotation=(-90, False, False))
    result = run(write_manifest([("p", "portrait_src.mp4", "a_tgt.mp4", "")]))
    assert result.accepted == []
    assert [(q.reason, Path(q.path).name) for q in result.quarantined] == [("size_mismatch", "a_tgt.mp4")]
    assert "64x96" in result.quarantined[0].message


def test_rotated_source_with_upright_target_is_accepted_and_normalizes_alike(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """The same portrait clip paired with an upright 64x96 target (its displayed frames) is accepted,
    and both sides normalize to the same shape and the same picture."""
    src = make_video(kit.root / "portrait_src2.mp4", 24, seed=6, rotation=(-90, False, False))
    tgt = kit.root / "portrait_tgt2.mp4"
    _encode_frames(tgt, [displayed(pattern(i, 96, 64, 6), -90) for i in range(24)])
    result = run(write_manifest([("p", "portrait_src2.mp4", "portrait_tgt2.mp4", "")]))
    assert result.quarantined == []
    [row] = result.accepted
    assert (row["src_width"], row["src_height"], row["tgt_width"], row["tgt_height"]) == (64, 96, 64, 96)
    a = normalize_media(src, tmp_path / "s.kclip", num_frames=8, max_area=10**9, fps=16.0)
    b = normalize_media(tgt, tmp_path / "t.kclip", num_frames=8, max_area=10**9, fps=16.0)
    assert (a["frames"], a["height"], a["width"]) == (b["frames"], b["height"], b["width"]) == (8, 96, 64)
    assert psnr(read_clip(tmp_path / "s.kclip", [3])[0], read_clip(tmp_path / "t.kclip", [3])[0]) > 30


def test_exif_rotated_photo_probes_and_pairs_as_displayed(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """A 96x64 JPEG tagged EXIF orientation 6 (turned camera) is a 64x96 picture: it probes as 64x96,
    pairs with an upright 64x96 image, and normalizes to the same shape as that image."""
    make_image(kit.root / "exif6.jpg", 96, 64, seed=2, exif_orientation=6)
    make_image(kit.root / "upright.jpg", 64, 96, seed=3)
    assert (probe_media(kit.root / "exif6.jpg").width, probe_media(kit.root / "exif6.jpg").height) == (64, 96)
    result = run(write_manifest([("p", "exif6.jpg", "upright.jpg", "")]))
    assert [q.reason for q in result.quarantined] == [] and len(result.accepted) == 1
    header = normalize_media(kit.root / "exif6.jpg", tmp_path / "e.kclip", num_frames=1, max_area=10**9, fps=0.0)
    assert (header["width"], header["height"]) == (64, 96)


def _encode_frames(path: Path, frames: list[np.ndarray], fps: int = 16) -> Path:
    """Encode RGB frames as they are (no display matrix)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_sideways_clip_from_an_older_normalizer_is_rebuilt(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """A clip left by the previous normalizer (no display rotation, no version in its header) under the
    expected name is rebuilt upright on the next run instead of being reused because hash and settings match."""
    make_video(kit.root / "portrait_src3.mp4", 24, seed=6, rotation=(-90, False, False))
    _encode_frames(kit.root / "portrait_tgt3.mp4", [displayed(pattern(i, 96, 64, 6), -90) for i in range(24)])
    result = run(write_manifest([("p", "portrait_src3.mp4", "portrait_tgt3.mp4", "")]))
    store = MediaStore(root=str(tmp_path / "data"))
    store_accepted_media(result.accepted, store, tmp_path / "data" / "media")
    raw = raw_table(result.accepted, "b", "0" * 64)
    settings = {"num_frames": 4, "max_area": 10**9, "multiple": 32}
    clip_dir = tmp_path / "data" / "clips"
    stale = clip_dir / f"{raw['src_sha256'][0][:20]}-4f-{10**9}a-32m.kclip"
    sideways = [pattern(i, 96, 64, 6) for i in range(4)]  # what the old normalizer stored
    write_clip(
        stale, sideways, fps=16.0, meta={"source_kind": "video", "source_sha256": raw["src_sha256"][0], **settings}
    )
    out = normalize_batch(raw, store, "b", clip_dir, settings)
    assert out.rejected == [] and (out.decoded, out.reused) == (2, 0)
    rebuilt = store.root_path / out.table["src_clip"][0]  # now a member of the batch's clip shard
    assert rebuilt.name.endswith(f"#{stale.name}") and not stale.exists()
    assert (clip_header(rebuilt)["width"], clip_header(rebuilt)["height"]) == (64, 96)
    assert psnr(read_clip(rebuilt, [0])[0], displayed(pattern(0, 96, 64, 6), -90)) > 30
