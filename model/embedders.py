"""Conv3d patch embedders for VAE-encoded conditions (source video, reference image)."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


class ConditionEmbedder(ModelMixin, ConfigMixin):
    """Patchify a condition latent into DiT tokens; zero-initialised so it is a no-op until trained.

    Saved as its own component (`source_embedder/`, `ref_embedder/`) like the released checkpoint;
    the weight name `patch_embedding.*` matches the released one.
    """

    @register_to_config
    def __init__(
        self,
        in_dim: int = 48,
        dim: int = 3072,
        patch_size: tuple[int, int, int] | list[int] = (1, 2, 2),
        zero_init: bool = True,
        ref_pad_first: bool = False,
    ) -> None:
        super().__init__()
        kernel = tuple(patch_size)
        self.patch_embedding = nn.Conv3d(in_dim, dim, kernel_size=kernel, stride=kernel)
        if zero_init:
            nn.init.zeros_(self.patch_embedding.weight)
            nn.init.zeros_(self.patch_embedding.bias)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) latent -> (B, dim, F, H/ph, W/pw) patch features."""
        return self.patch_embedding(latents.to(self.patch_embedding.weight.dtype))
