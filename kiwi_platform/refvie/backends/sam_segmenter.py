"""Segmenter backed by SAM (transformers `SamModel`): one box prompt per frame, best mask per frame.

How: each frame's box from the grounding (`frame_boxes`, or `box` for every frame when the list does
not match the clip) prompts SAM; of SAM's three candidate masks we keep the one with the highest
predicted IoU, upsampled to frame size by the processor's `post_process_masks`. Frames whose box is
None get an empty mask. `frame_stride=k` runs SAM on every k-th frame (and the last) and gives each
skipped frame the mask of the nearest processed frame: cheaper on long clips where the region moves
little between neighbouring frames. Frames go through the model `batch_size` at a time to bound memory.

Propagation (`propagate`, the paper's path): a VLM grounder gives one box, found on one frame, for
the whole clip, and an object that moves leaves it. With `propagate="auto"` (default) such a
single-box grounding is followed through time instead: SAM segments the grounded frame with the
box, then each next processed frame (forwards, then backwards from the grounded frame) is prompted
with the previous mask's box grown by `propagate_margin` of its size; a frame whose previous mask
came back empty falls back to the grounded box. Per-frame boxes (the `diff` grounder's tracked
boxes) are used as they are. `propagate=True`/`False` forces it on/off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends._loading import (
    PREPROCESSOR,
    WEIGHTS,
    backend_error,
    check_model_folder,
    model_cache,
    resolve_device,
    resolve_dtype,
)
from kiwi_platform.refvie.difference import mask_box
from kiwi_platform.refvie.types import Box, Grounding, SampleRejected

BACKEND = "sam segmenter"


def processed_frames(frames: int, stride: int) -> list[int]:
    """Indices SAM runs on: every `stride`-th frame plus the last one."""
    picked = list(range(0, frames, stride))
    if picked[-1] != frames - 1:
        picked.append(frames - 1)
    return picked


class SamSegmenter:
    """`Segmenter` from a local SAM folder (`SamModel` weights + `SamProcessor` config)."""

    name = "sam"

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        frame_stride: int = 1,
        batch_size: int = 4,
        dtype: str | None = None,
        propagate: bool | str = "auto",
        propagate_margin: float = 0.25,
    ) -> None:
        if propagate not in (True, False, "auto"):
            raise KiwiUserError(f"{BACKEND}: propagate must be true, false or 'auto'", code="backend_config")
        if frame_stride < 1 or batch_size < 1:
            raise KiwiUserError(f"{BACKEND}: frame_stride and batch_size must be >= 1", code="backend_config")
        self.folder = check_model_folder(
            model_path,
            BACKEND,
            {"config.json": ("config.json",), "model weights": WEIGHTS, "a processor config": PREPROCESSOR},
            "transformers SAM",
        )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.frame_stride = frame_stride
        self.batch_size = batch_size
        self.propagate = propagate
        self.propagate_margin = propagate_margin

    def _load(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from transformers import SamModel, SamProcessor

            model = SamModel.from_pretrained(str(self.folder), local_files_only=True, dtype=self.dtype)
            processor = SamProcessor.from_pretrained(str(self.folder), local_files_only=True)
            return model.to(self.device).eval(), processor

        key = ("sam", str(self.folder.resolve()), self.device, str(self.dtype))
        return model_cache(key, load, BACKEND, self.folder)

    def _frame_boxes(self, grounding: Grounding, frames: int) -> list[Box | None]:
        if len(grounding.frame_boxes) == frames:
            return list(grounding.frame_boxes)
        return [grounding.box] * frames

    def masks_for(self, images: list[np.ndarray], boxes: list[Box]) -> np.ndarray:
        """(N, H, W) bool: SAM's best-IoU mask for each image under its box prompt."""
        import torch

        model, processor = self._load()
        inputs = processor(images=images, input_boxes=[[list(map(float, b))] for b in boxes], return_tensors="pt")
        with torch.inference_mode():
            out = model(
                pixel_values=inputs["pixel_values"].to(self.device, self.dtype),
                input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                multimask_output=True,
            )
        masks = processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"]
        )
        best = out.iou_scores.float().cpu()[:, 0, :].argmax(dim=-1)
        return np.stack([m[0, int(b)].numpy().astype(bool) for m, b in zip(masks, best)])

    def segment(self, source: np.ndarray, target: np.ndarray, grounding: Grounding, prompt: str) -> np.ndarray:
        frames, height, width = target.shape[:3]
        boxes = self._frame_boxes(grounding, frames)
        if all(b is None for b in boxes):
            raise SampleRejected("qc_empty_mask", f"{BACKEND}: the grounding has no box to prompt SAM with")
        masks = np.zeros((frames, height, width), dtype=bool)
        run = [i for i in processed_frames(frames, self.frame_stride) if boxes[i] is not None]
        try:
            if self._propagates(grounding, boxes):
                self._propagate(target, grounding, boxes, run, masks)
            else:
                for start in range(0, len(run), self.batch_size):
                    chunk = run[start : start + self.batch_size]
                    masks[chunk] = self.masks_for([target[i] for i in chunk], [boxes[i] for i in chunk])  # type: ignore[misc]
        except (KiwiUserError, SampleRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - odd input must quarantine the pair, not crash the run
            raise backend_error(BACKEND, exc) from exc
        if self.frame_stride > 1 and run:
            done = np.array(run)
            for i in range(frames):
                if i not in run and boxes[i] is not None:
                    masks[i] = masks[done[np.abs(done - i).argmin()]]
        return masks

    def _propagates(self, grounding: Grounding, boxes: list[Box | None]) -> bool:
        """Whether to follow the object: forced, or (auto) one box for a clip of several frames."""
        if self.propagate != "auto":
            return bool(self.propagate) and len(boxes) > 1
        return len(boxes) > 1 and grounding.coarse_masks is None and len({b for b in boxes}) == 1

    def _propagate(
        self, target: np.ndarray, grounding: Grounding, boxes: list[Box | None], run: list[int], masks: np.ndarray
    ) -> None:
        """Segment the grounded frame with its box, then walk out from it, each frame prompted by
        the previous frame's mask box grown by `propagate_margin` (the grounded box when empty)."""
        if not run:
            return
        start = min(run, key=lambda i: (abs(i - grounding.frame_index), i))
        height, width = target.shape[1:3]
        order = [start, *[i for i in run if i > start], *[i for i in reversed(run) if i < start]]
        for i in order:
            near = [j for j in run if masks[j].any() and j != i and (j < i if i > start else j > i)]
            box = boxes[i]
            if i != start and near:
                prev = max(near) if i > start else min(near)
                box = grow_box(mask_box(masks[prev]), self.propagate_margin, height, width) or box
            masks[i] = self.masks_for([target[i]], [box])[0]  # type: ignore[list-item]


def grow_box(box: Box | None, margin: float, height: int, width: int) -> Box | None:
    """`box` grown on every side by `margin` x its width/height (at least 2 px), clipped to the frame."""
    if box is None:
        return None
    x0, y0, x1, y1 = box
    dx, dy = max(2, int(round(margin * (x1 - x0)))), max(2, int(round(margin * (y1 - y0))))
    return max(0, x0 - dx), max(0, y0 - dy), min(width, x1 + dx), min(height, y1 + dy)
