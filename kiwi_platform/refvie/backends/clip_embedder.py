"""ImageEmbedder backed by CLIP: L2-normalised image embeddings for near-duplicates and similarity.

Accepts either a full CLIP checkpoint (`CLIPModel`, model_type "clip": the usual released folder)
or a vision-only one (`CLIPVisionModelWithProjection`, model_type "clip_vision_model", half the
size); both give the projected image embedding, so cosine similarities match the released model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends._loading import (
    PREPROCESSOR,
    WEIGHTS,
    check_model_folder,
    model_cache,
    resolve_device,
    resolve_dtype,
)

BACKEND = "clip embedder"
MODEL_TYPES = ("clip", "clip_vision_model")


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from grey, RGB or RGBA input."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


class ClipImageEmbedder:
    """`ImageEmbedder` from a local CLIP folder (weights + `preprocessor_config.json`)."""

    name = "clip"

    def __init__(
        self, model_path: str | Path, device: str = "cpu", batch_size: int = 32, dtype: str | None = None
    ) -> None:
        self.folder = check_model_folder(
            model_path,
            BACKEND,
            {"config.json": ("config.json",), "model weights": WEIGHTS, "a preprocessor config": PREPROCESSOR},
            "transformers CLIP",
        )
        try:
            self.model_type = json.loads((self.folder / "config.json").read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise KiwiUserError(
                f"{BACKEND}: unreadable {self.folder / 'config.json'}: {exc}", code="backend_model_unreadable"
            ) from None
        if self.model_type not in MODEL_TYPES:
            raise KiwiUserError(
                f"{BACKEND}: {self.folder} holds a {self.model_type!r} model, expected one of {', '.join(MODEL_TYPES)}",
                code="backend_model_unreadable",
            )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = max(1, batch_size)

    def _load(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from transformers import CLIPImageProcessor, CLIPModel, CLIPVisionModelWithProjection

            cls = CLIPModel if self.model_type == "clip" else CLIPVisionModelWithProjection
            model = cls.from_pretrained(str(self.folder), local_files_only=True, dtype=self.dtype)
            processor = CLIPImageProcessor.from_pretrained(str(self.folder), local_files_only=True)
            return model.to(self.device).eval(), processor

        key = ("clip", str(self.folder.resolve()), self.device, str(self.dtype))
        return model_cache(key, load, BACKEND, self.folder)

    def _project(self, model: Any, pixel_values: Any) -> Any:
        if self.model_type == "clip":  # explicit: get_image_features' return type changed across versions
            return model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)
        return model(pixel_values=pixel_values).image_embeds

    @property
    def dim(self) -> int:
        model, _ = self._load()
        return int(model.config.projection_dim)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32, unit length; images are (H, W, 3) uint8 RGB of any size."""
        import torch

        model, processor = self._load()
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [_rgb(img) for img in images[start : start + self.batch_size]]
            pixels = processor(images=batch, return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
            with torch.inference_mode():
                emb = self._project(model, pixels).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
