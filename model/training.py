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
    # Precomputed (a feature cache): when given, the encoders are skipped (see `compute_loss`).
    size: tuple[int, int]  # (height, width) of the pixels the latents came from
    source_latents: torch.Tensor  # (1, C, F, h, w) normalised VAE latents
    target_latents: torch.Tensor
    ref_latents: torch.Tensor  # the padded (unshrunk) reference; used only with ref_scale_range None
    mllm_inputs: dict[str, torch.Tensor]  # processor output (`MLLMEncoder.prepare_inputs`)
    mllm_mode: str
    mllm_queries: int


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

    Precomputed inputs (`precompute_features`, a feature cache) skip the encoders: `source_latents` +
    `target_latents` + `size` replace the pixels, `mllm_inputs` (+ `mllm_mode`, `mllm_queries`) the
    processor. `ref_latents` (the unshrunk, padded reference) is used only when `ref_scale_range` is
    None; otherwise the reference is still shrunk from `ref_image` each step, so the random factor and
    the generator's draws are the same either way: the loss equals on-the-fly encoding's.
    """
    recipe = recipe or getattr(pipeline, "training_recipe", None) or UPSTREAM_RECIPE
    device = pipeline.transformer.device
    ref = batch.get("ref_image")
    cached = "source_latents" in batch and "target_latents" in batch
    if cached:
        source = None
        source_latents = batch["source_latents"].to(device)
        target_latents = batch["target_latents"].to(device)
        height, width = batch["size"]
    else:
        source = _as_video(batch["source"]).to(device)
        target = _as_video(batch["target"]).to(device)
        if source.shape != target.shape:
            raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} must match")
        _, _, _, height, width = target.shape
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
    if recipe.ref_scale_range is None and batch.get("ref_latents") is not None:
        ref_latents = batch["ref_latents"].to(device)
    elif ref is not None:
        if recipe.ref_scale_range is None:
            ref_pil = pad_reference(_as_pil(ref), width, height)
        else:
            lo, hi = recipe.ref_scale_range
            ref_scale = lo + (hi - lo) * float(torch.rand((), generator=generator))
            ref_pil = shrink_and_pad_reference(_as_pil(ref), width, height, ref_scale)
        with torch.no_grad():
            ref_latents = pipeline.encode_pixels(frames_to_tensor([ref_pil]).to(device))
    elif batch.get("ref_latents") is not None:
        raise ValueError("ref_latents are the unshrunk reference: with ref_scale_range set, pass ref_image too")

    if batch.get("mllm_inputs") is not None:
        enc = pipeline.mllm_encoder.encode_inputs(
            batch["mllm_inputs"], batch["mllm_mode"], int(batch["mllm_queries"]), pipeline.processor
        )
    else:
        if source is None:
            raise ValueError("a batch with cached latents needs mllm_inputs (or its source pixels)")
        enc = pipeline.mllm_encoder(
            batch["prompt"],
            tensor_to_frames(source),
            None if ref is None else _as_pil(ref),
            processor=pipeline.processor,
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


@torch.no_grad()
def precompute_features(
    encoders: Any, batch: TrainingBatch | dict[str, Any], reference: bool = False
) -> dict[str, Any]:
    """What `compute_loss` derives from a sample without randomness or trainable weights, for a cache.

    `encoders`: anything with `encode_pixels`, `mllm_encoder` (only its `prepare_inputs` is used) and
    `processor`, e.g. a `KiwiEditPipeline`. Returns `size`, `source_latents`, `target_latents`,
    `mllm_inputs`, `mllm_mode`, `mllm_queries`, and with `reference=True` (only meaningful for a recipe
    whose `ref_scale_range` is None) `ref_latents` of the padded reference.
    """
    source, target = _as_video(batch["source"]), _as_video(batch["target"])
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} must match")
    _, _, _, height, width = target.shape
    ref = batch.get("ref_image")
    ref_pil = None if ref is None else _as_pil(ref)
    inputs, mode, n = encoders.mllm_encoder.prepare_inputs(
        batch["prompt"], tensor_to_frames(source), ref_pil, processor=encoders.processor
    )
    out: dict[str, Any] = {
        "size": (height, width),
        "source_latents": encoders.encode_pixels(source).cpu(),
        "target_latents": encoders.encode_pixels(target).cpu(),
        "mllm_inputs": {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)},
        "mllm_mode": mode,
        "mllm_queries": n,
    }
    if reference and ref_pil is not None:
        out["ref_latents"] = encoders.encode_pixels(frames_to_tensor([pad_reference(ref_pil, width, height)])).cpu()
    return out
