"""Video/image I/O with PyAV and Pillow, and the frame preparation both training and inference use."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

OUTPUT_FPS = 15


class MediaReadError(ValueError):
    """A video or image could not be decoded (the message says which file and why)."""


def read_video_frames(path: str | Path, max_frames: int | None = None) -> list[Image.Image]:
    """Decode frames from frame 0 (at most `max_frames`) as RGB PIL images."""
    import av

    frames: list[Image.Image] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaReadError(f"{path} has no video stream")
            for frame in container.decode(video=0):
                frames.append(frame.to_image())
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.FFmpegError, OSError) as exc:
        raise MediaReadError(f"cannot read video {path}: {exc}") from exc
    if not frames:
        raise MediaReadError(f"video {path} has no decodable frames")
    return frames


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of a picture; RGBA is composited on white (upstream Qwen utils' `to_rgb`), other modes converted."""
    if image.mode == "RGBA":
        canvas = Image.new("RGB", image.size, (255, 255, 255))
        canvas.paste(image, mask=image.split()[3])
        return canvas
    return image.convert("RGB")


def read_image(path: str | Path) -> Image.Image:
    """Open an image as RGB (RGBA composited on white) or raise MediaReadError when it is not one."""
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaReadError(f"{path} is not a readable image: {exc}") from exc


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_video(frames: list[Image.Image] | np.ndarray, path: str | Path, fps: int = OUTPUT_FPS) -> Path:
    """Encode frames as H.264 mp4 (yuv420p); written to a temp file, then moved into place."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f, dtype=np.uint8) for f in frames]
    height, width = arrays[0].shape[:2]
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            # x264's macroblock-tree rate control gives different bytes (and pixels) for the same frames
            # from one encode to the next on short clips; without it equal frames give equal bytes
            stream.options = {"crf": "18", "x264-params": "mbtree=0"}
            for arr in arrays:
                for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; the output is the user's file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def valid_frame_count(n: int, temporal: int = 4) -> int:
    """Largest 4k+1 <= n (the VAE's causal temporal compression needs it)."""
    return max(1, (n - 1) // temporal * temporal + 1)


def round_up(value: int, multiple: int = 32) -> int:
    """Smallest multiple of `multiple` >= value (upstream pipeline's size check)."""
    return (value + multiple - 1) // multiple * multiple


def fit_size(width: int, height: int, max_area: int = 1280 * 720, multiple: int = 32) -> tuple[int, int]:
    """Default output size, as upstream's diffusers demo + pipeline choose it (docs/contract.md §4).

    Above `max_area`, scale down keeping aspect and floor each side to a multiple of 16 (the demo's
    `load_video_frames`); then round each side **up** to a multiple of `multiple` (the pipeline's
    `_check_resize`). 1280x720 -> 1280x736, 1920x1080 -> 1264x704 -> 1280x704.
    """
    w, h = prescale_size(width, height, max_area)
    return round_up(w, multiple), round_up(h, multiple)


def prescale_size(width: int, height: int, max_area: int = 1280 * 720) -> tuple[int, int]:
    """The demo's source downscale: unchanged within `max_area`, else int(side*scale) floored to 16."""
    scale = min(1.0, (max_area / (width * height)) ** 0.5)
    if scale >= 1.0:
        return width, height
    return int(width * scale) // 16 * 16, int(height * scale) // 16 * 16


def resize_frame(frame: Image.Image, width: int, height: int) -> Image.Image:
    """Upstream pipeline's frame fit: plain LANCZOS resize to (width, height), aspect not kept, no crop."""
    return to_rgb(frame).resize((width, height), Image.LANCZOS)


def resize_crop(frame: Image.Image, width: int, height: int) -> Image.Image:
    """Resize to cover (width, height) keeping aspect, then center-crop (training/evaluation sample prep)."""
    return ImageOps.fit(frame.convert("RGB"), (width, height), method=Image.BICUBIC, centering=(0.5, 0.5))


def pad_reference(image: Image.Image, width: int, height: int) -> Image.Image:
    """Fit the reference inside (width, height) on a white canvas, as the released model expects
    (upstream inference: `ImageOps.pad`, bicubic, centred)."""
    return ImageOps.pad(to_rgb(image), (width, height), color="white", centering=(0.5, 0.5))


def shrink_and_pad_reference(image: Image.Image, width: int, height: int, scale: float) -> Image.Image:
    """Training-time reference augmentation (upstream `shrink_and_pad_centered`).

    Fit inside (width, height) keeping aspect (bicubic), shrink by `scale` (upstream draws it uniformly
    from [0.7, 1.0]; sides truncated to int), paste centred (offsets floored) on a white canvas.
    """
    image = to_rgb(image)
    fitted = ImageOps.contain(image, (width, height))
    new_w, new_h = int(fitted.width * scale), int(fitted.height * scale)
    resized = fitted.resize((new_w, new_h), Image.BICUBIC)
    canvas = Image.new(image.mode, (width, height), "white")
    canvas.paste(resized, ((width - new_w) // 2, (height - new_h) // 2))
    return canvas


def frames_to_tensor(frames: list[Image.Image]) -> torch.Tensor:
    """PIL frames -> (1, 3, T, H, W) float in [-1, 1]."""
    arr = np.stack([np.asarray(f.convert("RGB"), dtype=np.float32) for f in frames])  # T H W C
    return torch.from_numpy(arr).permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0


def tensor_to_frames(video: torch.Tensor) -> list[Image.Image]:
    """(3, T, H, W) or (1, 3, T, H, W) in [-1, 1] -> PIL frames; rounds, so it inverts `frames_to_tensor`
    exactly (training inputs). Generated output goes through `decoded_to_frames` instead."""
    if video.dim() == 5:
        video = video[0]
    arr = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


def decoded_to_frames(video: torch.Tensor, dtype: torch.dtype | None = None) -> list[Image.Image]:
    """VAE output (1, 3, T, H, W) or (3, T, H, W) -> PIL frames exactly as upstream converts it:
    `((x + 1) * 127.5).clamp(0, 255)` computed in `dtype` (upstream: the VAE's dtype), then
    **truncated** to uint8."""
    if video.dim() == 5:
        video = video[0]
    if dtype is not None:
        video = video.to(dtype)
    arr = ((video + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
    return [Image.fromarray(a) for a in arr]
