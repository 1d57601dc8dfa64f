"""Edit builders under difficulty factors (`difficulty.Difficulty`): the hard benchmark set's pairs.

Why a module of its own: the easy builders in `edits.py` decide the demo set's bytes and must
not change. `build` runs the easy builder when no factor touches the object itself (so a
factor's pairs show the same scene and object as the easy pair of the same seed), a scaled
variant of the local builders when `motion` or `resize_replace` is on, then applies the
frame-level factors (pole occlusion, distractors, camera, regeneration) with exact masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiwi_platform.synth.clips import DemoLibrary, sample_clip
from kiwi_platform.synth.difficulty import (
    Difficulty,
    add_distractors,
    apply_camera,
    camera_move,
    occlude_with_pole,
    regenerate,
    scale_schedule,
)
from kiwi_platform.synth.edits import BUILDERS, Edit, _where
from kiwi_platform.synth.objects import (
    SHAPES,
    Sprite,
    make_sprite,
    motion_path,
    on_white,
    other_color,
    recolor,
    sprite_side,
)

LOCAL = ("local_add", "local_replace", "local_remove", "recolor")


def paste_track(frames: np.ndarray, sprite: Sprite, centres: np.ndarray, sizes: np.ndarray):
    """Composite `sprite` resized (nearest pixel: hard alpha, exact recolors) to `sizes[t]` around
    `centres[t]` (y, x), clipped at the frame edge. Returns (frames, masks, per-frame boxes)."""
    out = frames.copy()
    t, h, w = frames.shape[:3]
    masks = np.zeros((t, h, w), bool)
    boxes: list[list[int]] = []
    for i in range(t):
        side = int(sizes[i])
        rgb = cv2.resize(sprite.rgb, (side, side), interpolation=cv2.INTER_NEAREST)
        alpha = cv2.resize(sprite.alpha.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
        y0, x0 = int(round(centres[i][0] - side / 2)), int(round(centres[i][1] - side / 2))
        sy, sx = max(0, -y0), max(0, -x0)
        ey, ex = min(side, h - y0), min(side, w - x0)
        if ey > sy and ex > sx:
            a = alpha[sy:ey, sx:ex]
            out[i, y0 + sy : y0 + ey, x0 + sx : x0 + ex][a] = rgb[sy:ey, sx:ex][a]
            masks[i, y0 + sy : y0 + ey, x0 + sx : x0 + ex] = a
        ys, xs = np.nonzero(masks[i])
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max() + 1), int(ys.max() + 1)] if len(ys) else [0, 0, 0, 0])
    return out, masks, boxes


def _scaled_local(edit_type: str, rng, hrng, lib: DemoLibrary, frames: int, media: str, d: Difficulty) -> Edit:
    """The local builders with a per-frame scale (motion) and/or a differently sized replacement."""
    clip = sample_clip(rng, lib, frames)
    t, h, w = clip.frames.shape[:3]
    side = sprite_side(rng, h, w, 0.22, 0.35)
    old = make_sprite(rng, side, side)
    scales = scale_schedule(hrng, t) if d.motion else np.ones(t)
    biggest = int(np.ceil(side * scales.max()))
    path, phrase = motion_path(rng, t, h, w, (biggest, biggest))
    centres = path + biggest / 2
    sizes = np.maximum(4, np.round(side * scales)).astype(int)
    details = {"base": clip.origin, "scale": [round(float(scales[0]), 3), round(float(scales[-1]), 3)]}
    if edit_type == "local_add":
        tgt, mask, boxes = paste_track(clip.frames, old, centres, sizes)
        prompt = f"Add a {old.name} {_where(media, phrase)}."
        return Edit(
            clip.frames, tgt, mask, on_white(old), "object", prompt, boxes, clip.fps, {**details, "object": old.name}
        )
    src, mask_old, old_boxes = paste_track(clip.frames, old, centres, sizes)
    if edit_type == "local_remove":
        prompt = f"Remove the {old.name} from the {media}."
        return Edit(
            src,
            clip.frames,
            mask_old,
            on_white(old),
            "removed_object",
            prompt,
            old_boxes,
            clip.fps,
            {**details, "object": old.name},
        )
    if edit_type == "recolor":
        new = recolor(old, other_color(rng, old.color))
        tgt, _, boxes = paste_track(clip.frames, new, centres, sizes)
        prompt = f"Change the color of the {old.name} to {new.color}."
        extra = {"object": new.name, "recolored": old.name}
        return Edit(src, tgt, mask_old, on_white(new), "object", prompt, boxes, clip.fps, {**details, **extra})
    shape = str(rng.choice([s for s in SHAPES if s != old.shape]))
    factor = 1.0
    if d.resize_replace:
        factor = float(hrng.uniform(0.6, 0.75) if hrng.random() < 0.5 else hrng.uniform(1.3, 1.5))
    new_side = max(8, int(round(side * factor)))
    new = make_sprite(rng, new_side, new_side, shape=shape, color=other_color(rng, old.color))
    new_sizes = np.maximum(4, np.round(new_side * scales)).astype(int)
    tgt, mask_new, boxes = paste_track(clip.frames, new, centres, new_sizes)
    prompt = f"Replace the {old.name} with a {new.name}."
    extra = {"object": new.name, "replaced": old.name, "size_ratio": round(new_side / side, 3)}
    return Edit(src, tgt, mask_old | mask_new, on_white(new), "object", prompt, boxes, clip.fps, {**details, **extra})


def build(edit_type: str, rng, hrng, lib: DemoLibrary, frames: int, media: str, d: Difficulty) -> tuple[Edit, str]:
    """One pair under the factors in `d`; returns (edit, ground-truth edit type).

    The ground-truth type is `no_edit` for `photometric_only` pairs (the prompt still names an
    edit: that is what makes them bad input).
    """
    if edit_type in LOCAL and (d.motion or (d.resize_replace and edit_type == "local_replace")):
        edit = _scaled_local(edit_type, rng, hrng, lib, frames, media, d)
    else:
        edit = BUILDERS[edit_type](rng, lib, frames, media)
    src, tgt, mask, boxes = edit.src, edit.tgt, edit.mask, edit.object_boxes
    details = dict(edit.details)
    if d.motion and edit_type != "global_style":
        src, tgt, mask = occlude_with_pole(hrng, src, tgt, mask)
    if d.distractors and edit_type != "global_style":
        src, tgt, mask, names = add_distractors(hrng, src, tgt, mask)
        details["distractors"] = names
    if d.camera and len(src) > 1:
        src, tgt, mask, boxes = apply_camera(camera_move(hrng, *mask.shape), src, tgt, mask, boxes)
    truth = edit_type
    if d.photometric_only:
        tgt, mask, truth = src, np.zeros_like(mask), "no_edit"
        details["intended_edit_type"] = edit_type
    if d.regenerate or d.photometric_only:
        tgt = regenerate(hrng, tgt)
    details["factors"] = d.factors
    edit = Edit(src, tgt, mask, edit.reference, edit.reference_kind, edit.prompt, boxes, edit.fps, details)
    return edit, truth
