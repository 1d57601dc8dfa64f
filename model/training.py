"""One training sample end to end: VAE-encode, MLLM-encode, noise, DiT forward, weighted loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import torch
from PIL import Image

from model.loss import flow_matching_loss, sample_flow_matching
from model.pipeline import KiwiEditPipeline
from model.schedule import TRAIN_SIGMA_MIN
from model.video_io import frames_to_tensor, pad_reference, shrink_and_pad_reference, tensor_to_frames


@dataclass(frozen=True)
class TrainingRecipe:
    """Training numerics; the defaults are upstream's (showlab/Kiwi-Edit 223572d, docs/contract.md §3.1).

    - `sigma_min`: floor of the 1000 training sigmas. Upstream trains with 0 (last sigma 0.0050);
      0.003/1.002 (`model.schedule.SIGMA_MIN`) reuses the inference floor (last sigma 0.0196).
    - `ref_scale_range`: the reference is fitted into the frame, shrunk by a factor drawn uniformly from
      this range and centred on white (upstream `shrink_and_pad_centered`, 0.7-1.0). None pads it
      like inference does. The factor comes from the step's seeded generator, so exact resume holds.
    """

    sigma_min: float = TRAIN_SIGMA_MIN
    ref_scale_range: tuple[float, float] | None = (0.7, 1.0)


UPSTREAM_RECIPE = TrainingRecipe()


class TrainingBatch(TypedDict, total=False):
    """One sample. Frames are (3, T, H, W) float tensors in [-1, 1] (or lists of PIL frames),
    T = 4k+1 (1 for image edits), H and W multiples of 32; source and target have the same shape."""

    source: torch.Tensor | list[Image.Image]
    target: torch.Tensor | list[Image.Image]
    prompt: str
    ref_image: Image.Image | torch.Tensor | None


def _as_video(x: torch.Tensor | list[Image.Image]) -> torch.Tensor:
    if isinstance(x, list):
        return frames_to_tensor(x)
    return x.unsqueeze(0) if x.dim() == 4 else x


def _as_pil(x: Image.Image | torch.Tensor) -> Image.Image:
    if isinstance(x, Image.Image):
        return x
    x = x if x.dim() == 4 else x.unsqueeze(1)  # (3, H, W) -> (3, 1, H, W)
    return tensor_to_frames(x)[0]


def compute_loss(
    pipeline: KiwiEditPipeline,
    batch: TrainingBatch | dict[str, Any],
    generator: torch.Generator | None = None,
    return_details: bool = False,
    recipe: TrainingRecipe | None = None,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Flow-matching loss for one (source, prompt, [reference], target) sample.

    The VAE is run without gradients (it is never trained); gradients reach whatever
    `apply_stage_freezing` left trainable. `generator` makes the timestep, the noise and the reference
    shrink factor reproducible (drawn in that order). `recipe` defaults to `pipeline.training_recipe`
    when set, else upstream's (`TrainingRecipe()`). With a bf16 model, timesteps are rounded to bf16
    and the noisy latents built in bf16, as upstream (`model.loss.sample_flow_matching`).
    """
    recipe = recipe or getattr(pipeline, "training_recipe", None) or UPSTREAM_RECIPE
    device = pipeline.transformer.device
    source = _as_video(batch["source"]).to(device)
    target = _as_video(batch["target"]).to(device)
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} must match")
    _, _, _, height, width = target.shape
    ref = batch.get("ref_image")

    with torch.no_grad():
        source_latents = pipeline.encode_pixels(source)
        target_latents = pipeline.encode_pixels(target)
    fm = sample_flow_matching(
        target_latents,
        shift=pipeline.shift,
        generator=generator,
        sigma_min=recipe.sigma_min,
        dtype=pipeline.transformer.dtype,
    )
    ref_latents, ref_scale = None, None
    if ref is not None:
        if recipe.ref_scale_range is None:
            ref_pil = pad_reference(_as_pil(ref), width, height)
        else:
            lo, hi = recipe.ref_scale_range
            ref_scale = lo + (hi - lo) * float(torch.rand((), generator=generator))
            ref_pil = shrink_and_pad_reference(_as_pil(ref), width, height, ref_scale)
        with torch.no_grad():
            ref_latents = pipeline.encode_pixels(frames_to_tensor([ref_pil]).to(device))

    enc = pipeline.mllm_encoder(
        batch["prompt"], tensor_to_frames(source), None if ref is None else _as_pil(ref), processor=pipeline.processor
    )
    source_embeds, ref_embeds = pipeline.denoise_step_inputs(source_latents, ref_latents)
    prediction = pipeline.predict_velocity(fm.noisy, fm.timestep, fm.sigma, enc.context, source_embeds, ref_embeds)
    loss = flow_matching_loss(prediction, fm)
    if return_details:
        return loss, {
            "sigma": fm.sigma,
            "timestep": fm.timestep,
            "ref_scale": ref_scale,
            "mode": enc.mode,
            "context_tokens": enc.context.shape[1],
            "prediction": prediction,
        }
    return loss
