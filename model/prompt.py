"""The encoder prompt layout and vision inputs the released weights were trained with (docs/contract.md §2.3).

Vision inputs follow upstream's `qwen_vl_utils` (showlab/Kiwi-Edit 223572d) exactly: a single source
image and the reference image take `fetch_image` (factor 28), a source video (and, in reference mode,
even a single source frame) takes `fetch_video` (frames snapped to 56, then >= 100,352 px per frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from model.video_io import to_rgb

Mode = Literal["image", "video", "reference"]

SYSTEM_PROMPT = (
    "You will be given an image and instruction. Please describe the content of the image in detail "
    "based on instruction in your own words."
)
REFERENCE_SUFFIX = " Use the reference input from last frame."
PLACEHOLDER_TOKEN = "<|object_ref_start|>"


@dataclass
class EncoderPrompt:
    """Chat messages plus the visual inputs in the order their placeholders appear."""

    messages: list[dict]
    images: list[Image.Image]
    videos: list[list[Image.Image]]
    mode: Mode
    num_queries: int


def pick_mode(num_source_frames: int, has_reference: bool) -> Mode:
    """Reference mode always uses the video path (even for one frame), as upstream does."""
    if has_reference:
        return "reference"
    return "image" if num_source_frames == 1 else "video"


# Qwen vision-input rules of upstream's `qwen_vl_utils` (the released weights saw inputs made by them).
SPATIAL_MERGE = 2
PATCH = 14
IMAGE_FACTOR = PATCH * SPATIAL_MERGE  # 28
IMAGE_MIN_PIXELS = 4 * IMAGE_FACTOR**2  # 3,136
IMAGE_MAX_PIXELS = 16384 * IMAGE_FACTOR**2
VIDEO_FRAME_MIN_PIXELS = 128 * IMAGE_FACTOR**2  # 100,352
VIDEO_FRAME_MAX_PIXELS = 768 * IMAGE_FACTOR**2  # 602,112
VIDEO_TOTAL_PIXELS = 128000 * IMAGE_FACTOR**2 * 0.9  # MODEL_SEQ_LEN * factor^2 * 0.9
VIDEO_LIST_MAX_FRAMES = 16  # upstream's FPS_MAX_FRAMES: a frame list is sampled to 16 whatever max_frames says
MAX_RATIO = 200


def sample_frames(frames: list[Image.Image], max_frames: int = VIDEO_LIST_MAX_FRAMES) -> list[Image.Image]:
    """Uniformly pick at most `max_frames` frames: indices `linspace(0, n-1, k).round()` in float32, as
    upstream's `fetch_video` does for a frame list. An odd count is kept as is: Qwen's video processor
    repeats the last frame to fill its temporal patch of 2, as upstream does."""
    n = len(frames)
    keep = min(n, max_frames)
    if keep == n:
        return list(frames)
    idx = torch.linspace(0, n - 1, keep).round().long().tolist()
    return [frames[i] for i in idx]


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Upstream `qwen_vl_utils.smart_resize`: sides multiples of `factor`, area in [min, max].

    Two guards where upstream would fail instead: a minimum above the maximum is lowered to it (upstream
    asserts; the tiny config's per-frame caps are below Qwen's minimums), and no side drops below
    `factor` (upstream could floor a side to 0).
    """
    min_pixels = min(min_pixels, max_pixels)
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, got {width}x{height}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def fit_pixels(
    image: Image.Image, max_pixels: int, factor: int = IMAGE_FACTOR, min_pixels: int | None = None
) -> Image.Image:
    """Upstream `fetch_image`: RGBA composited on white, then smart-resized (PIL bicubic) to sides that
    are multiples of `factor` with area in [4 * factor^2, max_pixels].

    Used with factor 28 for a single source image and for the reference image.
    """
    image = to_rgb(image)
    min_pixels = 4 * factor * factor if min_pixels is None else min_pixels
    h, w = smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    return image.resize((w, h), Image.BICUBIC)


def fit_video(frames: list[Image.Image], max_pixels: int, max_frames: int = VIDEO_LIST_MAX_FRAMES) -> list[Image.Image]:
    """Upstream `fetch_video` for a list of frames (the path the released weights' source video took).

    1. sample at most 16 frames uniformly;
    2. each frame through `fetch_image` with `image_factor` 28 passed as the *patch size*, so sides snap
       to multiples of **56** (min 4*56*56, max `max_pixels`);
    3. the stacked clip through `smart_resize` with factor 28, per-frame minimum 100,352 px and maximum
       min(max_pixels, 602,112), resized with torchvision bicubic + antialias on uint8 (a no-op when
       the size already fits).
    1280x720 -> 672x336, 640x352 -> 616x336, 320x240 -> 392x280.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    frames = sample_frames(frames, max_frames)
    snapped = [fit_pixels(f, max_pixels, factor=2 * IMAGE_FACTOR) for f in frames]
    video = torch.stack([torch.from_numpy(np.array(f)).permute(2, 0, 1) for f in snapped])  # T C H W uint8
    n, _, height, width = video.shape
    cap = max(min(VIDEO_FRAME_MAX_PIXELS, VIDEO_TOTAL_PIXELS / n * 2), int(VIDEO_FRAME_MIN_PIXELS * 1.05))
    h, w = smart_resize(height, width, IMAGE_FACTOR, VIDEO_FRAME_MIN_PIXELS, min(max_pixels, cap))
    if (h, w) != (height, width):
        video = tvf.resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return [Image.fromarray(a) for a in video.permute(0, 2, 3, 1).numpy()]


def build_prompt(
    instruction: str,
    source: list[Image.Image],
    reference: Image.Image | None,
    num_queries: dict[str, int],
    max_frames: int,
    max_pixels_per_frame: int,
    max_ref_pixels: int,
    max_image_pixels: int,
    system_prompt: str = SYSTEM_PROMPT,
) -> EncoderPrompt:
    """System message, then one user turn: source, instruction, [reference], N placeholders."""
    mode = pick_mode(len(source), reference is not None)
    n = num_queries[mode]
    content: list[dict] = []
    images: list[Image.Image] = []
    videos: list[list[Image.Image]] = []
    if mode == "image":
        content.append({"type": "image"})
        images.append(fit_pixels(source[0], max_image_pixels))
    else:
        videos.append(fit_video(source, max_pixels_per_frame, max_frames))
        content.append({"type": "video"})
    text = instruction + (REFERENCE_SUFFIX if mode == "reference" else "")
    content.append({"type": "text", "text": text})
    if reference is not None:
        content.append({"type": "image"})
        images.append(fit_pixels(reference, max_ref_pixels))
    content.append({"type": "text", "text": PLACEHOLDER_TOKEN * n})
    messages = [
        {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
        {"role": "user", "content": content},
    ]
    return EncoderPrompt(messages=messages, images=images, videos=videos, mode=mode, num_queries=n)
