"""Read case media as uint8 arrays aligned with a generated output (same size, same first frames).

Why align here: the pipeline resizes the source to cover (width, height) and centre-crops it
(`model.video_io.resize_crop`: PIL `ImageOps.fit`, bicubic, centred). Every metric compares the
output with the source, target and masks *as the model saw them*, so they get the same resize and
crop (masks with nearest-neighbour so they stay binary) and the same leading frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from kiwi_platform.evaluation.suites import Case, Suite

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class MediaError(ValueError):
    """A case's media file cannot be decoded (message names the file)."""


def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB from an image (T=1), a normalized `.kclip`, an `.npy` array or a video (PyAV)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in IMAGE_SUFFIXES:
            with Image.open(path) as img:
                return np.asarray(img.convert("RGB"))[None]
        if suffix == ".npy":
            arr = np.load(path)
            return arr[:max_frames] if max_frames else arr
        if suffix == ".kclip":
            from kiwi_platform.media.clips import clip_header, read_clip

            total = clip_header(path)["frames"]
            return read_clip(path, range(min(total, max_frames or total)))
        import av

        frames = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes one clear line
        raise MediaError(f"cannot read {path}: {exc}") from None
    if not frames:
        raise MediaError(f"{path} has no decodable frames")
    return np.stack(frames)


def fit_frames(frames: np.ndarray, width: int, height: int, *, nearest: bool = False) -> np.ndarray:
    """Resize each frame to (width, height) exactly as the pipeline does (upstream's frame fit: plain
    LANCZOS resize, aspect not kept, no crop; nearest for masks), so metrics compare aligned pixels."""
    if frames.shape[1:3] == (height, width):
        return frames
    method = Image.NEAREST if nearest else Image.LANCZOS
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), method)) for f in frames])


def read_masks(folder: str | Path, count: int) -> np.ndarray:
    """The first `count` per-frame masks of a folder of 0/255 PNGs as (T, H, W) bool."""
    files = sorted(Path(folder).glob("*.png"))[:count]
    if len(files) < count:
        raise MediaError(f"{folder} has {len(files)} mask(s), need {count}")
    return np.stack([np.asarray(Image.open(f).convert("L")) > 127 for f in files])


@dataclass
class CaseMedia:
    """Everything a metric needs for one case, aligned to the output (T, H, W)."""

    case: Case
    source: np.ndarray  # (T,H,W,3) uint8
    output: np.ndarray  # (T,H,W,3) uint8
    target: np.ndarray | None = None  # (T,H,W,3) uint8
    mask: np.ndarray | None = None  # (T,H,W) bool, True = pixels the edit should change
    reference: np.ndarray | None = None  # (h,w,3) uint8, original size


def load_case_media(suite: Suite, case: Case, output_path: str | Path) -> CaseMedia:
    """Read the output, then the source/target/masks cut to its frame count and fitted to its size."""
    output = read_frames(output_path)
    t, h, w = output.shape[:3]
    source = fit_frames(read_frames(suite.path(case.src_video), t), w, h)
    if len(source) < t:
        raise MediaError(f"case {case.case_id}: output has {t} frames but the source only {len(source)}")
    source = source[:t]
    target = mask = reference = None
    if case.tgt_video:
        target = fit_frames(read_frames(suite.path(case.tgt_video), t), w, h)[:t]
        if len(target) < t:
            target = None  # a shorter target cannot be compared frame by frame
    if case.mask_dir:
        masks = read_masks(suite.path(case.mask_dir), t)
        mask = fit_frames(masks.astype(np.uint8) * 255, w, h, nearest=True) > 127
    if case.ref_image:
        reference = read_frames(suite.path(case.ref_image))[0]
    return CaseMedia(case, source, output, target, mask, reference)
