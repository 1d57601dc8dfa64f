"""Inpainter backed by a diffusers inpainting pipeline (e.g. Stable Diffusion inpainting) from a local folder.

How: the image is resized so its longer side is `resolution` (each side a multiple of the pipeline's
latent grid), inpainted with a fixed seed (same input -> same pixels -> same content hash on
re-materialization), resized back, and then *blended*: only pixels inside the hole take the
generated values, every pixel outside it is the input's, bit for bit. The VAE round trip would
otherwise blur and shift colours of the whole image, and the reference must keep the real background.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends._loading import (
    backend_error,
    check_model_folder,
    model_cache,
    resolve_device,
    resolve_dtype,
)
from kiwi_platform.refvie.types import SampleRejected

BACKEND = "diffusers inpainter"


def _components(folder: Path) -> list[str]:
    """Component folders that model_index.json says the pipeline has (null entries are optional parts)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError) as exc:
        raise KiwiUserError(
            f"{BACKEND}: unreadable {folder / 'model_index.json'}: {exc}", code="backend_model_unreadable"
        ) from None
    return [
        k
        for k, v in index.items()
        if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] is not None
    ]


def working_size(height: int, width: int, resolution: int | None, multiple: int) -> tuple[int, int]:
    """(h, w) with the longer side near `resolution` (None: keep the frame size), both multiples of `multiple`."""
    scale = 1.0 if resolution is None else resolution / max(height, width)
    return (
        max(multiple, int(round(height * scale / multiple)) * multiple),
        max(multiple, int(round(width * scale / multiple)) * multiple),
    )


class DiffusersInpainter:
    """`Inpainter` from a local diffusers pipeline folder (`model_index.json` + component folders)."""

    name = "diffusers"

    def __init__(
        self,
        model_path: str | Path,
        prompt: str = "clean background",
        negative_prompt: str | None = None,
        steps: int = 25,
        guidance_scale: float = 7.5,
        resolution: int | None = 512,
        seed: int = 0,
        device: str = "cpu",
        dtype: str | None = None,
    ) -> None:
        if steps < 1:
            raise KiwiUserError(f"{BACKEND}: steps must be >= 1", code="backend_config")
        self.folder = check_model_folder(
            model_path, BACKEND, {"model_index.json": ("model_index.json",)}, "diffusers inpainting pipeline"
        )
        for component in _components(self.folder):
            part = self.folder / component
            if not part.is_dir() or not any(part.iterdir()):
                raise KiwiUserError(
                    f"{BACKEND}: model folder {self.folder} lacks the {component}/ component "
                    "listed in model_index.json",
                    code="backend_model_missing",
                )
        self.prompt, self.negative_prompt = prompt, negative_prompt
        self.steps, self.guidance_scale, self.resolution, self.seed = steps, guidance_scale, resolution, seed
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)

    def _load(self) -> Any:
        def load() -> Any:
            from diffusers import AutoPipelineForInpainting

            pipe = AutoPipelineForInpainting.from_pretrained(
                str(self.folder), local_files_only=True, dtype=self.dtype, safety_checker=None
            )
            pipe.set_progress_bar_config(disable=True)
            return pipe.to(self.device)

        key = ("diffusers", str(self.folder.resolve()), self.device, str(self.dtype))
        return model_cache(key, load, BACKEND, self.folder)

    def inpaint(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or hole.shape != image.shape[:2]:
            raise SampleRejected(
                "qc_backend_error",
                f"{BACKEND}: expected (H,W,3) image and (H,W) hole, got {image.shape} / {hole.shape}",
            )
        hole = hole.astype(bool)
        if not hole.any():
            return image.copy()
        try:
            filled = self._generate(image, hole)
        except (KiwiUserError, SampleRejected):
            raise
        except Exception as exc:  # noqa: BLE001 - odd input must quarantine the pair, not crash the run
            raise backend_error(BACKEND, exc) from exc
        return np.where(hole[..., None], filled, image).astype(np.uint8)

    def _generate(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The pipeline's output for the whole image, at the input's size (before blending)."""
        import torch
        from PIL import Image

        pipe = self._load()
        height, width = image.shape[:2]
        multiple = int(getattr(pipe, "vae_scale_factor", 8)) * 8
        h, w = working_size(height, width, self.resolution, multiple)
        src = Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC)
        mask = Image.fromarray(hole.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        out = pipe(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            image=src,
            mask_image=mask,
            height=h,
            width=w,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generator,
            output_type="np",
        ).images[0]
        result = Image.fromarray((np.clip(out, 0.0, 1.0) * 255).round().astype(np.uint8))
        return np.asarray(result.resize((width, height), Image.Resampling.BICUBIC))
