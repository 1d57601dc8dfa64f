"""The encoder prompt layout the released weights were trained with (docs/contract.md §2.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image

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


def sample_frames(frames: list[Image.Image], max_frames: int) -> list[Image.Image]:
    """Uniformly pick at most `max_frames` frames. An odd count is kept as is: Qwen's video processor
    repeats the last frame to fill its temporal patch of 2, as upstream does."""
    n = len(frames)
    keep = min(n, max_frames)
    if keep == n:
        return list(frames)
    idx = [round(i * (n - 1) / max(keep - 1, 1)) for i in range(keep)]
    return [frames[i] for i in idx]


def fit_pixels(image: Image.Image, max_pixels: int, factor: int = 28, min_pixels: int = 28 * 28) -> Image.Image:
    """Resize to sides that are multiples of `factor` with area <= max_pixels (Qwen's smart resize)."""
    w, h = image.size
    h_bar = max(factor, round(h / factor) * factor)
    w_bar = max(factor, round(w / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar = max(factor, math.floor(h / beta / factor) * factor)
        w_bar = max(factor, math.floor(w / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    image = image.convert("RGB")
    return image if (w_bar, h_bar) == image.size else image.resize((w_bar, h_bar), Image.BICUBIC)


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
        frames = sample_frames(source, max_frames)
        size = fit_pixels(frames[0], max_pixels_per_frame).size
        videos.append([f.convert("RGB").resize(size, Image.BICUBIC) for f in frames])
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
