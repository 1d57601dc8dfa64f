"""KiwiEditPipeline: wires the components and runs the sampler; model logic stays in the models."""

from __future__ import annotations

import os
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
from model.schedule import NUM_TRAIN_TIMESTEPS, euler_step, inference_sigmas
from model.transformer import KiwiTransformer
from model.vae import decode_latents, encode_video
from model.video_io import (
    fit_size,
    frames_to_tensor,
    pad_reference,
    resize_crop,
    tensor_to_frames,
    valid_frame_count,
    write_video,
)

COMPONENTS = ("transformer", "vae", "mllm_encoder", "source_embedder", "ref_embedder", "processor", "scheduler")


class CheckpointError(FileNotFoundError):
    """A checkpoint folder or one of its component folders is missing (message names which)."""


def load_vae(folder: Path, torch_dtype: torch.dtype | None = None) -> AutoencoderKLWan:
    """`vae/` as diffusers wrote it, or as the released conversion script wrote it: a config of class
    `VAE` naming an original-key Wan2.2 weight file (`vae_pth`), rebuilt at the released size and
    converted with diffusers' own Wan key map."""
    import json

    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    if cfg.get("_class_name") != "VAE" and "vae_pth" not in cfg:
        return AutoencoderKLWan.from_pretrained(folder, **({"torch_dtype": torch_dtype} if torch_dtype else {}))
    from model.configs import get_config
    from model.vae import build_vae, convert_original_vae_state_dict

    weights = folder / Path(str(cfg.get("vae_pth", "diffusion_pytorch_model.safetensors"))).name
    if not weights.exists():
        raise CheckpointError(f"{folder} names VAE weights {weights.name} (vae_pth) but the file is missing")
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    vae = build_vae(get_config("kiwi-5b").vae)
    try:
        vae.load_state_dict(convert_original_vae_state_dict(state), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{weights} is not a Wan2.2 VAE in the original key layout: {str(exc).splitlines()[0]}"
        ) from None
    return vae.to(torch_dtype) if torch_dtype else vae


@dataclass
class KiwiEditOutput:
    frames: list[Image.Image]
    latents: torch.Tensor


class KiwiEditPipeline(DiffusionPipeline):
    """Instruction (+ reference) guided video editing with Kiwi-Edit.

    Sampling: flow-matching Euler with shift from `scheduler.config.shift` (5), 50 steps by
    default, no classifier-free guidance; the source injection is scaled by the current sigma.
    """

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
        """Load the released folder layout with our classes, whatever `model_index.json` names.

        Raises CheckpointError naming the missing folder/component instead of a deep traceback.
        """
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
    ) -> KiwiEditOutput:
        """Edit `video` (PIL frames; one frame = image edit) following `prompt` (and `ref_image`).

        Height/width default to the source size capped at `max_area` and floored to multiples of
        32; num_frames defaults to the largest 4k+1 <= len(video) (capped at 81).
        """
        device = self._execution_device
        if not video:
            raise ValueError("the source video has no frames")
        if width is None or height is None:
            width, height = fit_size(*video[0].size, max_area=max_area)
        if width % 32 or height % 32:
            raise ValueError(f"height and width must be multiples of 32, got {height}x{width}")
        available = valid_frame_count(len(video))
        num_frames = min(available, 81) if num_frames is None else num_frames
        if num_frames != valid_frame_count(num_frames):
            raise ValueError(f"num_frames must be 4k+1 (1, 5, 9, ..., 81), got {num_frames}")
        if num_frames > len(video):
            raise ValueError(f"asked for {num_frames} frames but the source has only {len(video)}")

        frames = [resize_crop(f, width, height) for f in video[:num_frames]]
        context = self.mllm_encoder(prompt, frames, ref_image, processor=self.processor).context

        source_latents = self.encode_pixels(frames_to_tensor(frames).to(device))
        ref_latents = None
        if ref_image is not None:
            ref_latents = self.encode_pixels(frames_to_tensor([pad_reference(ref_image, width, height)]).to(device))
        source_embeds, ref_embeds = self.denoise_step_inputs(source_latents, ref_latents)

        if generator is None and seed is not None:
            generator = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn(source_latents.shape, generator=generator, dtype=torch.float32).to(device)

        sigmas = inference_sigmas(num_inference_steps, self.shift)
        for i in self.progress_bar(range(len(sigmas))):
            sigma = sigmas[i].to(device).reshape(1)
            velocity = self.predict_velocity(
                latents, sigma * NUM_TRAIN_TIMESTEPS, sigma, context, source_embeds, ref_embeds
            )
            latents = euler_step(latents, velocity.float(), sigmas, i)

        if output_type == "latent":
            return KiwiEditOutput(frames=[], latents=latents)
        pixels = decode_latents(self.vae, latents)
        self.maybe_free_model_hooks()
        return KiwiEditOutput(frames=tensor_to_frames(pixels), latents=latents)

    @staticmethod
    def save_video(frames: list[Image.Image] | np.ndarray, path: str | os.PathLike, fps: int = 15) -> Path:
        """Write frames as an mp4 at 15 fps (the released output rate)."""
        return write_video(frames, path, fps=fps)
