"""Wan2.2 DiT with Kiwi-Edit conditioning: MLLM context, source add-injection, reference frame concat."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import WanTransformer3DModel
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.utils import apply_lora_scale


def sinusoidal_embedding(timestep: torch.Tensor, dim: int) -> torch.Tensor:
    """Upstream `sinusoidal_embedding_1d`: [cos | sin] of t * 10000^(-i/half), computed in float64, returned
    in the timestep's dtype (with bf16 sampling the timestep is already rounded to bf16).

    Same frequencies and order as diffusers' `Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0)`,
    which computes in float32 instead.
    """
    device = timestep.device
    work = torch.device("cpu") if device.type == "mps" else device  # MPS has no float64
    position = timestep.to(work, torch.float64)
    half = dim // 2
    freqs = torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=work).div(half))
    sinusoid = torch.outer(position, freqs)
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1).to(device, timestep.dtype)


class KiwiTransformer(WanTransformer3DModel):
    """`WanTransformer3DModel` whose forward takes Kiwi-Edit's conditions.

    Differences from the parent forward (everything else, including gradient checkpointing,
    attention backends/processors and LoRA hooks, is inherited unchanged):

    - `encoder_hidden_states` is the connector output, already at DiT width, so the parent's
      T5 `text_embedder` is skipped (its weights stay in the checkpoint for layout compatibility).
    - `source_embeds` (from `source_embedder`) are added to the patch embedding, scaled by the
      current sigma (`source_scale`): structure comes in element-wise.
    - `ref_embeds` (from `ref_embedder`) are appended as extra latent frames; RoPE is computed for
      the longer frame axis and the reference tokens are dropped after the output head.
    - The timestep sinusoid is computed in float64 and cast to the timestep's dtype (upstream
      `sinusoidal_embedding_1d`), not by the parent's float32 `timesteps_proj`.
    """

    def _rope(self, frames: int, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE tables for a post-patch grid; the module reads only the shape of its input."""
        p_t, p_h, p_w = self.config.patch_size
        shape_only = torch.empty((1, 1, frames * p_t, height * p_h, width * p_w), device="meta")
        cos, sin = self.rope(shape_only)
        return cos.to(device), sin.to(device)

    def _time_embeddings(self, timestep: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.condition_embedder
        t_freq = sinusoidal_embedding(timestep.flatten(), self.config.freq_dim)
        time_dtype = next(iter(emb.time_embedder.parameters())).dtype
        temb = emb.time_embedder(t_freq.to(time_dtype)).to(dtype)
        timestep_proj = emb.time_proj(emb.act_fn(temb)).unflatten(1, (6, -1))
        return temb, timestep_proj

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        source_embeds: torch.Tensor | None = None,
        source_scale: torch.Tensor | float | None = None,
        ref_embeds: torch.Tensor | None = None,
        ref_pad_first: bool = False,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """Predict the flow velocity for `hidden_states` (B, C, F, H, W) at `timestep` (B,) in [0, 1000].

        `source_embeds`: (B, dim, F, H/2, W/2) patch features of the source latent (same grid as the
        target). `source_scale`: sigma per sample (B,) or scalar; defaults to timestep / 1000.
        `ref_embeds`: (B, dim, Fr, H/2, W/2) patch features of the (padded) reference latent.
        """
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        f, h, w = frames // p_t, height // p_h, width // p_w
        timestep = timestep.reshape(-1).expand(batch) if timestep.numel() == 1 else timestep.reshape(batch)

        x = self.patch_embedding(hidden_states)
        if source_embeds is not None:
            if source_embeds.shape[2:] != x.shape[2:]:
                raise ValueError(f"source latent grid {tuple(source_embeds.shape[2:])} != target {tuple(x.shape[2:])}")
            scale = timestep.float() / 1000.0 if source_scale is None else source_scale
            scale = torch.as_tensor(scale, device=x.device, dtype=torch.float32)
            if scale.numel() == 1:  # upstream's op: x + cond * sigma, sigma a 0-dim float32 tensor
                x = x + source_embeds.to(x.dtype) * scale.reshape(())
            else:
                x = x + (source_embeds.float() * scale.reshape(-1, 1, 1, 1, 1)).to(x.dtype)
        x = x.flatten(2).transpose(1, 2)

        ref_len = 0
        total_f = f
        if ref_embeds is not None:
            if ref_embeds.shape[3:] != (h, w):
                raise ValueError(f"reference grid {tuple(ref_embeds.shape[3:])} != target {(h, w)}; pad it first")
            total_f = f + ref_embeds.shape[2]
            ref_tokens = ref_embeds.flatten(2).transpose(1, 2).to(x.dtype)
            ref_len = ref_tokens.shape[1]
            x = torch.cat([ref_tokens, x], dim=1) if ref_pad_first else torch.cat([x, ref_tokens], dim=1)
        x = x.contiguous()
        rotary_emb = self._rope(total_f, h, w, x.device)

        temb, timestep_proj = self._time_embeddings(timestep, encoder_hidden_states.dtype)
        context = encoder_hidden_states

        if torch.is_grad_enabled() and self.gradient_checkpointing:
            for block in self.blocks:
                x = self._gradient_checkpointing_func(block, x, context, timestep_proj, rotary_emb)
        else:
            for block in self.blocks:
                x = block(x, context, timestep_proj, rotary_emb)

        shift, scale_out = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (self.norm_out(x.float()) * (1 + scale_out.to(x.device)) + shift.to(x.device)).type_as(x)
        x = self.proj_out(x)

        if ref_len:
            x = x[:, ref_len:] if ref_pad_first else x[:, :-ref_len]

        x = x.reshape(batch, f, h, w, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
