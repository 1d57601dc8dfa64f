"""Grounder backed by Qwen2.5-VL: ask the model where the edit is, read the box from its answer.

How: the model sees the first source frame and the first target frame (same size, so they share one
coordinate space) and is asked for the changed region as a JSON `bbox_2d`. Seeing the source matters
for removals, where the target alone shows nothing to point at. Qwen2.5-VL answers in absolute
pixels of its *resized* input image (the processor snaps each side to a multiple of the 14 px patch
and bounds the pixel count), so the box is scaled by frame size / resized size, taken from the
processor's `image_grid_thw`. `coords="norm1000"` reads Qwen2-VL style 0..1000 coordinates instead.

One box is grounded (on `frame_index`) and reused for every frame in `frame_boxes`: the segmenter
refines per frame, and grounding every frame would cost one generation per frame. An answer without
a usable box raises `SampleRejected("qc_backend_error")` so the pair is quarantined, not guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends._loading import (
    PREPROCESSOR,
    TOKENIZER,
    WEIGHTS,
    backend_error,
    check_model_folder,
    model_cache,
    resolve_device,
    resolve_dtype,
)
from kiwi_platform.refvie.backends.box_parsing import parse_box, to_frame_box
from kiwi_platform.refvie.types import Grounding, SampleRejected

PROMPT = (
    "The first image is a video frame before an edit, the second is the same frame after it. "
    "Locate the region changed by this edit in the second image: {instruction}. "
    'Answer with a JSON bbox_2d [x1, y1, x2, y2], like [{{"bbox_2d": [x1, y1, x2, y2], "label": "edit"}}].'
)
PROMPT_TARGET_ONLY = (
    "Locate the region changed by this edit: {instruction}. "
    'Answer with a JSON bbox_2d [x1, y1, x2, y2], like [{{"bbox_2d": [x1, y1, x2, y2], "label": "edit"}}].'
)
BACKEND = "qwen grounder"


class QwenVLGrounder:
    """`Grounder` from a local Qwen2.5-VL folder (model weights + processor, `save_pretrained` layout)."""

    name = "qwen"

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        dtype: str | None = None,
        max_new_tokens: int = 64,
        frame_index: int = 0,
        show_source: bool = True,
        coords: str = "absolute",
    ) -> None:
        if coords not in ("absolute", "norm1000"):
            raise KiwiUserError(
                f"{BACKEND}: coords must be 'absolute' or 'norm1000', got {coords!r}", code="backend_config"
            )
        self.folder = check_model_folder(
            model_path,
            BACKEND,
            {
                "config.json": ("config.json",),
                "model weights": WEIGHTS,
                "a tokenizer": TOKENIZER,
                "a processor config": PREPROCESSOR,
            },
            "transformers Qwen2.5-VL",
        )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_new_tokens = max_new_tokens
        self.frame_index = frame_index
        self.show_source = show_source
        self.coords = coords

    def _load(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                str(self.folder), local_files_only=True, dtype=self.dtype
            )
            processor = AutoProcessor.from_pretrained(str(self.folder), local_files_only=True)
            return model.to(self.device).eval(), processor

        key = ("qwen", str(self.folder.resolve()), self.device, str(self.dtype))
        return model_cache(key, load, BACKEND, self.folder)

    def answer(self, source_frame: np.ndarray, target_frame: np.ndarray, prompt: str) -> tuple[str, tuple[int, int]]:
        """The model's raw answer and the (height, width) of the resized image it saw."""
        import torch
        from PIL import Image

        model, processor = self._load()
        images = [Image.fromarray(target_frame)]
        template = PROMPT_TARGET_ONLY
        if self.show_source:
            images.insert(0, Image.fromarray(source_frame))
            template = PROMPT
        content = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": template.format(instruction=prompt.strip().rstrip("."))})
        text = processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        inputs = processor(text=[text], images=images, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.generate(model, inputs)
        answer = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=False)[0]
        _, grid_h, grid_w = (int(v) for v in inputs["image_grid_thw"][-1])
        patch = int(getattr(processor.image_processor, "patch_size", 14))
        return answer, (grid_h * patch, grid_w * patch)

    def generate(self, model: Any, inputs: Any) -> Any:
        """Greedy decoding, so the same pair always gets the same box (idempotent re-materialization)."""
        return model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)

    def ground(self, source: np.ndarray, target: np.ndarray, prompt: str) -> Grounding:
        frames, height, width = target.shape[0], target.shape[1], target.shape[2]
        index = min(max(self.frame_index, 0), frames - 1)
        try:
            answer, (rh, rw) = self.answer(source[min(index, source.shape[0] - 1)], target[index], prompt)
        except (KiwiUserError, SampleRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - odd input must quarantine the pair, not crash the run
            raise backend_error(BACKEND, exc) from exc
        raw = parse_box(answer)
        if raw is None:
            raise SampleRejected(
                "qc_backend_error", f"{BACKEND}: could not parse a box from the answer {answer[:80]!r}"
            )
        if self.coords == "norm1000":
            sx, sy = width / 1000.0, height / 1000.0
        else:
            sx, sy = width / rw, height / rh
        box = to_frame_box(raw, sx, sy, width, height)
        if box is None:
            raise SampleRejected("qc_backend_error", f"{BACKEND}: the answer's box {raw} is empty inside the frame")
        area = (box[2] - box[0]) * (box[3] - box[1]) / float(width * height)
        return Grounding(
            box=box, frame_boxes=[box] * frames, frame_index=index, scores={"grounding_box_area": round(area, 6)}
        )
