"""The six synthetic edit types. Each returns source, target, the ground-truth mask and reference.

Mask meaning (all types): True where the edit changes pixels, i.e. the edited region.
- local_add / local_remove / recolor: the object's pixels;
- local_replace: union of the old and the new object's pixels (same box, same path);
- background_change: everything except the kept foreground object;
- global_style: the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kiwi_platform.synth.clips import Clip, DemoLibrary, sample_clip
from kiwi_platform.synth.objects import (
    SHAPES,
    make_sprite,
    motion_path,
    on_white,
    other_color,
    paste,
    recolor,
    sprite_side,
)
from kiwi_platform.synth.styles import STYLES

EDIT_TYPES = ("local_add", "local_replace", "local_remove", "recolor", "background_change", "global_style")


@dataclass
class Edit:
    """One generated pair before encoding."""

    src: np.ndarray  # (T,H,W,3) uint8 RGB
    tgt: np.ndarray
    mask: np.ndarray  # (T,H,W) bool, True = edited region
    reference: np.ndarray  # (h,w,3) uint8 RGB
    reference_kind: str  # object | removed_object | background | style_frame
    prompt: str
    object_boxes: list[list[int]]
    fps: int
    details: dict = field(default_factory=dict)


def _where(media: str, phrase: str) -> str:
    return f"moving {phrase}" if media == "video" else phrase


def _object_and_path(rng: np.random.Generator, clip: Clip, lo: float = 0.22, hi: float = 0.35, **fixed):
    t, h, w = clip.frames.shape[:3]
    side = sprite_side(rng, h, w, lo, hi)
    sprite = make_sprite(rng, side, side, **fixed)
    path, phrase = motion_path(rng, t, h, w, sprite.size)
    return sprite, path, phrase


def local_add(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """Target = source + an object moving along a path."""
    clip = sample_clip(rng, lib, frames)
    sprite, path, phrase = _object_and_path(rng, clip)
    tgt, mask, boxes = paste(clip.frames, sprite, path)
    prompt = f"Add a {sprite.name} {_where(media, phrase)}."
    return Edit(
        clip.frames,
        tgt,
        mask,
        on_white(sprite),
        "object",
        prompt,
        boxes,
        clip.fps,
        {"base": clip.origin, "object": sprite.name},
    )


def local_replace(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """Source has object A on a path, target has a different object B (other shape and color) on it."""
    clip = sample_clip(rng, lib, frames)
    old, path, _ = _object_and_path(rng, clip)
    shape = str(rng.choice([s for s in SHAPES if s != old.shape]))
    new = make_sprite(rng, *old.size, shape=shape, color=other_color(rng, old.color))
    src, mask_old, _ = paste(clip.frames, old, path)
    tgt, mask_new, boxes = paste(clip.frames, new, path)
    prompt = f"Replace the {old.name} with a {new.name}."
    return Edit(
        src,
        tgt,
        mask_old | mask_new,
        on_white(new),
        "object",
        prompt,
        boxes,
        clip.fps,
        {"base": clip.origin, "object": new.name, "replaced": old.name},
    )


def local_remove(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """Source has an object on a path; target is the clean plate."""
    clip = sample_clip(rng, lib, frames)
    sprite, path, _ = _object_and_path(rng, clip)
    src, mask, boxes = paste(clip.frames, sprite, path)
    prompt = f"Remove the {sprite.name} from the {media}."
    return Edit(
        src,
        clip.frames,
        mask,
        on_white(sprite),
        "removed_object",
        prompt,
        boxes,
        clip.fps,
        {"base": clip.origin, "object": sprite.name},
    )


def recolor_edit(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """An object present in both; in the target its hue is shifted to another named color."""
    clip = sample_clip(rng, lib, frames)
    sprite, path, _ = _object_and_path(rng, clip)
    new = recolor(sprite, other_color(rng, sprite.color))
    src, mask, _ = paste(clip.frames, sprite, path)
    tgt, _, boxes = paste(clip.frames, new, path)
    prompt = f"Change the color of the {sprite.name} to {new.color}."
    return Edit(
        src,
        tgt,
        mask,
        on_white(new),
        "object",
        prompt,
        boxes,
        clip.fps,
        {"base": clip.origin, "object": new.name, "recolored": sprite.name},
    )


def background_change(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """A foreground object kept on its path; everything else replaced by another clip.

    The mask is the background (the edited region); the reference is the clean new background.
    """
    clip = sample_clip(rng, lib, frames)
    new_bg = sample_clip(rng, lib, frames, exclude=clip.origin)
    sprite, path, _ = _object_and_path(rng, clip, 0.3, 0.45)
    src, fg, boxes = paste(clip.frames, sprite, path)
    tgt, _, _ = paste(new_bg.frames, sprite, path)
    prompt = f"Replace the background behind the {sprite.name} with {new_bg.description}."
    return Edit(
        src,
        tgt,
        ~fg,
        new_bg.frames[0].copy(),
        "background",
        prompt,
        boxes,
        clip.fps,
        {"base": clip.origin, "new_background": new_bg.origin, "foreground": sprite.name},
    )


def global_style(rng: np.random.Generator, lib: DemoLibrary, frames: int, media: str) -> Edit:
    """A whole-frame filter. The reference is the stylized first frame (i.e. the target's own frame 0)."""
    clip = sample_clip(rng, lib, frames)
    name = str(rng.choice(list(STYLES)))
    fn, template = STYLES[name]
    tgt = np.stack([fn(f) for f in clip.frames])
    t, h, w = clip.frames.shape[:3]
    mask = np.ones((t, h, w), bool)
    return Edit(
        clip.frames,
        tgt,
        mask,
        tgt[0].copy(),
        "style_frame",
        template.format(media=media),
        [[0, 0, w, h]] * t,
        clip.fps,
        {"base": clip.origin, "style": name},
    )


BUILDERS: dict[str, Callable[[np.random.Generator, DemoLibrary, int, str], Edit]] = {
    "local_add": local_add,
    "local_replace": local_replace,
    "local_remove": local_remove,
    "recolor": recolor_edit,
    "background_change": background_change,
    "global_style": global_style,
}
