"""One training sample end to end: VAE-encode, MLLM-encode, noise, DiT forward, weighted loss."""

from __future__ import annotations

from typing import Any, TypedDict

import torch
from PIL import Image

from model.loss import flow_matching_loss, sample_flow_matching
from model.pipeline import KiwiEditPipeline
from model.video_io import frames_to_tensor, pad_reference, tensor_to_frames


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
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Flow-matching loss for one (source, prompt, [reference], target) sample.

    The VAE is run without gradients (it is never trained); gradients reach whatever
    `apply_stage_freezing` left trainable. `generator` makes the timestep and noise reproducible.
    """
    device = pipeline.transformer.device
    source = _as_video(batch["source"]).to(device)
    target = _as_video(batch["target"]).to(device)
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} must match")
    _, _, _, height, width = target.shape
    ref = batch.get("ref_image")
    ref_pil = None if ref is None else pad_reference(_as_pil(ref), width, height)

    with torch.no_grad():
        source_latents = pipeline.encode_pixels(source)
        target_latents = pipeline.encode_pixels(target)
        ref_latents = None if ref_pil is None else pipeline.encode_pixels(frames_to_tensor([ref_pil]).to(device))

    enc = pipeline.mllm_encoder(
        batch["prompt"], tensor_to_frames(source), None if ref is None else _as_pil(ref), processor=pipeline.processor
    )
    fm = sample_flow_matching(target_latents, shift=pipeline.shift, generator=generator)
    source_embeds, ref_embeds = pipeline.denoise_step_inputs(source_latents, ref_latents)
    prediction = pipeline.predict_velocity(fm.noisy, fm.timestep, fm.sigma, enc.context, source_embeds, ref_embeds)
    loss = flow_matching_loss(prediction, fm)
    if return_details:
        return loss, {
            "sigma": fm.sigma,
            "timestep": fm.timestep,
            "mode": enc.mode,
            "context_tokens": enc.context.shape[1],
            "prediction": prediction,
        }
    return loss
