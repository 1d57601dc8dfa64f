"""KiwiEditPipeline: wires the components and runs the sampler; model logic stays in the models."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from PIL import Image

from model.embedders import ConditionEmbedder
from model.mllm_encoder import MLLMEncoder
from model.processor import load_processor
from model.schedule import NUM_TRAIN_TIMESTEPS, euler_step, inference_sigmas, sigma_index
from model.transformer import KiwiTransformer
from model.vae import decode_latents, encode_video
from model.vae_wan22 import load_vae_folder as load_vae  # `vae/` in either layout; loaders import it from here
from model.video_io import (
    decoded_to_frames,
    fit_size,
    frames_to_tensor,
    pad_reference,
    prescale_size,
    resize_frame,
    round_up,
    to_rgb,
    valid_frame_count,
    write_video,
)

COMPONENTS = ("transformer", "vae", "mllm_encoder", "source_embedder", "ref_embedder", "processor", "scheduler")


class CheckpointError(FileNotFoundError):
    """A checkpoint folder or one of its component folders is missing (message names which)."""


def _as_dtype(value: torch.dtype | str) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value).removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"latents_dtype must be a floating dtype such as 'float32', got {value!r}")
    return dtype


@dataclass
class KiwiEditOutput:
    frames: list[Image.Image]
    latents: torch.Tensor


class KiwiEditPipeline(DiffusionPipeline):
    """Instruction (+ reference) guided video editing with Kiwi-Edit. Sampling: flow-matching Euler
    with shift from `scheduler.config.shift` (5), 50 steps by default, no classifier-free guidance;
    the source injection is scaled by the current sigma."""

    model_cpu_offload_seq = "mllm_encoder->source_embedder->ref_embedder->transformer->vae"
    _optional_components: list[str] = []

    def __init__(
        self,
        transformer: KiwiTransformer,
        vae: AutoencoderKLWan,
        mllm_encoder: MLLMEncoder,
        source_embedder: ConditionEmbedder,
        ref_embedder: ConditionEmbedder,
        processor: Any,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            transformer=transformer,
            vae=vae,
            mllm_encoder=mllm_encoder,
            source_embedder=source_embedder,
            ref_embedder=ref_embedder,
            processor=processor,
            scheduler=scheduler,
        )
        mllm_encoder.processor = processor

    # -- loading -------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, torch_dtype: torch.dtype | None = None, **_: Any
    ) -> KiwiEditPipeline:
        """Load the released folder layout with our classes, whatever `model_index.json` names; a
        CheckpointError names a missing folder/component instead of a deep traceback."""
        root = Path(path)
        if not root.is_dir():
            raise CheckpointError(
                f"checkpoint folder {root} does not exist (expected {', '.join(c + '/' for c in COMPONENTS)})"
            )
        missing = [c for c in COMPONENTS if not (root / c).is_dir()]
        if missing:
            raise CheckpointError(f"checkpoint {root} is missing component folder(s): {', '.join(missing)}")
        from model.released import is_released_encoder_folder, load_released_encoder

        kw = {"torch_dtype": torch_dtype} if torch_dtype is not None else {}
        try:
            transformer = KiwiTransformer.from_pretrained(root / "transformer", **kw)
            vae = load_vae(root / "vae", torch_dtype)
            if is_released_encoder_folder(root / "mllm_encoder"):
                encoder = load_released_encoder(root / "mllm_encoder", torch_dtype)
            else:
                encoder = MLLMEncoder.from_pretrained(root / "mllm_encoder", low_cpu_mem_usage=False, **kw)
            source_embedder = ConditionEmbedder.from_pretrained(root / "source_embedder", **kw)
            ref_embedder = ConditionEmbedder.from_pretrained(root / "ref_embedder", **kw)
            processor = load_processor(root / "processor")
            scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(root / "scheduler")
        except OSError as exc:
            raise CheckpointError(f"checkpoint {root} is incomplete: {exc}") from exc
        if torch_dtype is not None:
            # diffusers keeps `_keep_in_fp32_modules` (time embedder, norms, RoPE tables) in float32 on a
            # dtype load; upstream loads in float32 and calls `pipe.to(dtype)`, so everything runs in dtype
            # (plain nn.Module.to: ModelMixin.to would only add a warning about exactly this).
            for module in (transformer, encoder, source_embedder, ref_embedder):
                torch.nn.Module.to(module, torch_dtype)
        return cls(transformer, vae, encoder, source_embedder, ref_embedder, processor, scheduler)

    # -- memory switches ---------------------------------------------------------------
    def enable_vae_tiling(self) -> None:
        """Decode/encode in spatial tiles: needed for 720p on small GPUs."""
        self.vae.enable_tiling()

    def disable_vae_tiling(self) -> None:
        self.vae.disable_tiling()

    # -- building blocks shared with training ----------------------------------------
    @property
    def shift(self) -> float:
        return float(self.scheduler.config.get("shift", 5.0))

    def encode_pixels(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised VAE latents."""
        return encode_video(self.vae, video)

    def denoise_step_inputs(
        self, source_latents: torch.Tensor | None, ref_latents: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Run the two embedders once; they do not depend on the timestep."""
        src = self.source_embedder(source_latents) if source_latents is not None else None
        ref = self.ref_embedder(ref_latents) if ref_latents is not None else None
        return src, ref

    def predict_velocity(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        sigma: torch.Tensor,
        context: torch.Tensor,
        source_embeds: torch.Tensor | None,
        ref_embeds: torch.Tensor | None,
    ) -> torch.Tensor:
        dtype = self.transformer.dtype
        return self.transformer(
            latents.to(dtype),
            timestep,
            context.to(dtype),
            source_embeds=None if source_embeds is None else source_embeds.to(dtype),
            source_scale=sigma,
            ref_embeds=None if ref_embeds is None else ref_embeds.to(dtype),
            ref_pad_first=bool(self.ref_embedder.config.get("ref_pad_first", False)),
        ).sample

    def denoise(
        self,
        noise: torch.Tensor,
        context: torch.Tensor,
        source_embeds: torch.Tensor | None,
        ref_embeds: torch.Tensor | None,
        num_inference_steps: int = 50,
        dtype: torch.dtype | None = None,
        callback_on_step_end: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """The Euler loop of upstream's released pipeline (`__call__` step 9), noise -> clean latents.

        Latents live in `dtype` (default: the transformer's); each step's timestep is the float32 table
        value rounded to `dtype`, the source-injection sigma is the table sigma nearest to that rounded
        timestep (upstream `_scheduler_get_sigma`), and the update is `x + v * (s_next - s)` in `dtype`.
        """
        device = self._execution_device
        dtype = self.transformer.dtype if dtype is None else dtype
        latents = noise.to(device=device, dtype=dtype)
        sigmas = inference_sigmas(num_inference_steps, self.shift).to(device)
        timesteps = sigmas * NUM_TRAIN_TIMESTEPS
        for i in self.progress_bar(range(len(sigmas))):
            timestep = timesteps[i].unsqueeze(0).to(dtype)
            sigma = sigmas[sigma_index(timesteps, timestep)]
            velocity = self.predict_velocity(latents, timestep, sigma, context, source_embeds, ref_embeds)
            latents = euler_step(latents, velocity, sigmas, i)
            if callback_on_step_end is not None:
                callback_on_step_end(i, timestep, latents)
        return latents

    @staticmethod
    def prepare_frames(
        video: list[Image.Image],
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        max_area: int = 1280 * 720,
    ) -> tuple[list[Image.Image], list[Image.Image], int, int]:
        """(frames for the MLLM, frames for the VAE, width, height), as upstream's demo + pipeline make them.

        RGBA is composited on white. Without height/width: a source above `max_area` is first scaled
        down (sides floored to 16, LANCZOS; the demo's `load_video_frames`) and the size is that one;
        then height/width round up to multiples of 32 and the first `num_frames` frames are resized
        to it with LANCZOS (no crop). The MLLM gets the (prescaled) frames, all of them.
        """
        if not video:
            raise ValueError("the source video has no frames")
        video = [to_rgb(f) for f in video]
        if width is None or height is None:
            src_w, src_h = video[0].size
            pre_w, pre_h = prescale_size(src_w, src_h, max_area)
            if (pre_w, pre_h) != (src_w, src_h):
                video = [f.resize((pre_w, pre_h), Image.LANCZOS) for f in video]
            width, height = fit_size(src_w, src_h, max_area=max_area)
        width, height = round_up(int(width)), round_up(int(height))
        available = valid_frame_count(len(video))
        num_frames = min(available, 81) if num_frames is None else num_frames
        if num_frames != valid_frame_count(num_frames):
            raise ValueError(f"num_frames must be 4k+1 (1, 5, 9, ..., 81), got {num_frames}")
        if num_frames > len(video):
            raise ValueError(f"asked for {num_frames} frames but the source has only {len(video)}")
        return video, [resize_frame(f, width, height) for f in video[:num_frames]], width, height

    # -- inference -------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        video: list[Image.Image],
        ref_image: Image.Image | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        output_type: str = "pil",
        max_area: int = 1280 * 720,
        latents_dtype: torch.dtype | str | None = None,
        callback_on_step_end: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> KiwiEditOutput:
        """Edit `video` (PIL frames; one frame = image edit) following `prompt` (and `ref_image`).

        Follows upstream's released diffusers pipeline and demo (docs/contract.md §4):

        - size: height/width are rounded **up** to multiples of 32; by default they come from the
          source, first scaled down to `max_area` with sides floored to 16 (the demo's frame loading,
          which then also resizes the frames, LANCZOS); 1280x720 -> 1280x736.
        - the DiT's source frames are the first `num_frames` frames resized to (width, height) with
          LANCZOS, aspect not kept, no crop; the MLLM sees the frames as given (all of them; RGBA
          composited on white), not the resized ones;
        - the reference is padded onto a white canvas of the output size for the VAE;
        - num_frames defaults to the largest 4k+1 <= len(video) (capped at 81); other counts raise
          (upstream would round up and then fail on the missing frames).

        `latents_dtype`: None (default) keeps the latents in the transformer's dtype and rounds each
        timestep to it, as upstream does with bf16; "float32" (or torch.float32) keeps latents, the
        timestep and the Euler update in float32 for more precision (not what the released model saw).
        `callback_on_step_end(step, timestep, latents)` is called after each Euler step.
        """
        device = self._execution_device
        video, frames, width, height = self.prepare_frames(video, height, width, num_frames, max_area)
        dtype = self.transformer.dtype if latents_dtype is None else _as_dtype(latents_dtype)
        context = self.mllm_encoder(prompt, video, ref_image, processor=self.processor).context

        source_latents = self.encode_pixels(frames_to_tensor(frames).to(device))
        ref_latents = None
        if ref_image is not None:
            ref_latents = self.encode_pixels(frames_to_tensor([pad_reference(ref_image, width, height)]).to(device))
        source_embeds, ref_embeds = self.denoise_step_inputs(source_latents, ref_latents)

        if generator is None and seed is not None:
            generator = torch.Generator("cpu").manual_seed(seed)
        noise = torch.randn(source_latents.shape, generator=generator, dtype=torch.float32)
        latents = self.denoise(
            noise, context, source_embeds, ref_embeds, num_inference_steps, dtype, callback_on_step_end
        )

        if output_type == "latent":
            return KiwiEditOutput(frames=[], latents=latents)
        pixels = decode_latents(self.vae, latents)
        self.maybe_free_model_hooks()
        return KiwiEditOutput(frames=decoded_to_frames(pixels, getattr(self.vae, "dtype", None)), latents=latents)

    @staticmethod
    def save_video(frames: list[Image.Image] | np.ndarray, path: str | os.PathLike, fps: int = 15) -> Path:
        """Write frames as an mp4 at 15 fps (the released output rate)."""
        return write_video(frames, path, fps=fps)
