"""Images and videos to JPEG data URLs, small enough for a chat request.

Why downscale and sample: a VLM judge sees images at a few hundred pixels anyway, and request size
drives both latency and cost, so each image is shrunk to `max_side` and a video becomes a handful of
evenly spaced frames (first and last included). Accepted inputs: PIL images, uint8 arrays (H, W), (H, W, 3|4)
or (T, H, W, 3) for a video, image files, video files (PyAV) and normalized `.kclip` clips.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

MediaLike = np.ndarray | Image.Image | str | os.PathLike

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"}


def sample_indices(total: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices over `total` frames, first and last included, no repeats."""
    if total <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, num=max(1, min(count, total)))})


def _to_image(frame: np.ndarray, max_side: int) -> Image.Image:
    if frame.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        image = Image.fromarray(frame).convert("RGB")
    elif frame.ndim == 3 and frame.shape[2] == 3:
        image = Image.fromarray(frame)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        rgba = Image.fromarray(frame)
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    else:
        raise ValueError(f"images must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    return _shrink(image, max_side)


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def jpeg_data_url(image: Image.Image, quality: int = 85) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _video_file_frames(path: Path, frames: int, max_side: int) -> list[Image.Image]:
    import av  # imported lazily: only video inputs need it

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        declared = stream.frames or 0
        wanted = set(sample_indices(declared, frames)) if declared else None
        kept: dict[int, Image.Image] = {}
        for index, frame in enumerate(container.decode(stream)):
            if wanted is None or index in wanted:
                kept[index] = _shrink(frame.to_image(), max_side)
            if wanted is not None and index >= max(wanted):
                break
    if not kept:
        raise ValueError(f"no frames could be decoded from {path}")
    chosen = sample_indices(len(kept), frames) if wanted is None else None
    order = sorted(kept)
    return [kept[order[i]] for i in chosen] if chosen is not None else [kept[i] for i in order]


def load_frames(item: MediaLike, *, max_side: int = 512, video_frames: int = 4) -> list[Image.Image]:
    """One image, or `video_frames` sampled frames of a video, each shrunk to at most `max_side`."""
    if isinstance(item, Image.Image):
        return [_shrink(item.convert("RGB"), max_side)]
    if isinstance(item, np.ndarray):
        if item.ndim == 4:
            return [_to_image(item[i], max_side) for i in sample_indices(item.shape[0], video_frames)]
        return [_to_image(item, max_side)]
    path = Path(item)
    if not path.is_file():
        raise ValueError(f"judge input {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".kclip":
        from kiwi_platform.media.clips import clip_header, read_clip

        indices = sample_indices(int(clip_header(path)["frames"]), video_frames)
        return [_to_image(frame, max_side) for frame in read_clip(path, indices)]
    if suffix in VIDEO_SUFFIXES:
        return _video_file_frames(path, video_frames, max_side)
    try:
        with Image.open(path) as image:
            image.load()
            return [_shrink(image.convert("RGB"), max_side)]
    except (OSError, SyntaxError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ValueError(f"judge input {path} is not a readable image or video: {exc}") from None


def to_data_urls(item: MediaLike, *, max_side: int = 512, video_frames: int = 4, quality: int = 85) -> list[str]:
    """JPEG data URLs for one input (one URL for an image, several for a video)."""
    return [jpeg_data_url(img, quality) for img in load_frames(item, max_side=max_side, video_frames=video_frames)]
