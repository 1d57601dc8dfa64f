"""Named model sizes: `tiny` (CPU tests, same code path) and `kiwi-5b` (the released sizes).

Each config is a plain dict bundle so the component classes stay the single source of truth for
their own constructor arguments (diffusers/transformers `save_pretrained` writes them back out).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Wan2.2 VAE (z=48) per-channel latent statistics, published with Wan2.2-TI2V-5B.
WAN22_LATENTS_MEAN = [
    -0.2289,
    -0.0052,
    -0.1323,
    -0.2339,
    -0.2799,
    0.0174,
    0.1838,
    0.1557,
    -0.1382,
    0.0542,
    0.2813,
    0.0891,
    0.1570,
    -0.0098,
    0.0375,
    -0.1825,
    -0.2246,
    -0.1207,
    -0.0698,
    0.5109,
    0.2665,
    -0.2108,
    -0.2158,
    0.2502,
    -0.2055,
    -0.0322,
    0.1109,
    0.1567,
    -0.0729,
    0.0899,
    -0.2799,
    -0.1230,
    -0.0313,
    -0.1649,
    0.0117,
    0.0723,
    -0.2839,
    -0.2083,
    -0.0520,
    0.3748,
    0.0152,
    0.1957,
    0.1433,
    -0.2944,
    0.3573,
    -0.0548,
    -0.1681,
    -0.0667,
]
WAN22_LATENTS_STD = [
    0.4765,
    1.0364,
    0.4514,
    1.1677,
    0.5313,
    0.4990,
    0.4818,
    0.5013,
    0.8158,
    1.0344,
    0.5894,
    1.0901,
    0.6885,
    0.6165,
    0.8454,
    0.4978,
    0.5759,
    0.3523,
    0.7135,
    0.6804,
    0.5833,
    1.4146,
    0.8986,
    0.5659,
    0.7069,
    0.5338,
    0.4889,
    0.4917,
    0.4069,
    0.4999,
    0.6866,
    0.4093,
    0.5709,
    0.6065,
    0.6415,
    0.4944,
    0.5726,
    1.2042,
    0.5458,
    1.6887,
    0.3971,
    1.0600,
    0.3943,
    0.5537,
    0.5444,
    0.4089,
    0.7468,
    0.7744,
]


@dataclass(frozen=True)
class KiwiModelConfig:
    """Everything needed to build a random-weight Kiwi-Edit model of one size."""

    name: str
    transformer: dict[str, Any]
    vae: dict[str, Any]
    qwen: dict[str, Any]  # kwargs for transformers.Qwen2_5_VLConfig (text_config / vision_config dicts)
    encoder: dict[str, Any]  # MLLMEncoder kwargs other than the Qwen config
    processor: dict[str, Any] = field(default_factory=dict)  # tiny offline processor settings

    @property
    def dit_dim(self) -> int:
        return self.transformer["num_attention_heads"] * self.transformer["attention_head_dim"]

    def copy(self) -> KiwiModelConfig:
        return copy.deepcopy(self)


def _vae(base_dim: int, decoder_base_dim: int, num_res_blocks: int) -> dict[str, Any]:
    return dict(
        base_dim=base_dim,
        decoder_base_dim=decoder_base_dim,
        z_dim=48,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=num_res_blocks,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
        latents_mean=list(WAN22_LATENTS_MEAN),
        latents_std=list(WAN22_LATENTS_STD),
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_temporal=4,
        scale_factor_spatial=16,
    )


TINY = KiwiModelConfig(
    name="tiny",
    transformer=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=48,
        out_channels=48,
        text_dim=32,
        freq_dim=32,
        ffn_dim=64,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    ),
    vae=_vae(base_dim=8, decoder_base_dim=8, num_res_blocks=1),
    qwen=dict(
        text_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[1],
            tokens_per_second=2,
        ),
        tie_word_embeddings=True,
    ),
    encoder=dict(
        num_image_queries=8,
        num_video_queries=16,
        num_ref_queries=24,
        lora_rank=8,
        lora_alpha=8,
        max_frames=16,
        max_pixels_per_frame=56 * 56,
        max_ref_pixels=28 * 28 * 4,
        max_image_pixels=56 * 56,
    ),
    processor=dict(vocab_size=512),
)

KIWI_5B = KiwiModelConfig(
    name="kiwi-5b",
    transformer=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=24,
        attention_head_dim=128,
        in_channels=48,
        out_channels=48,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=14336,
        num_layers=30,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    ),
    vae=_vae(base_dim=160, decoder_base_dim=256, num_res_blocks=2),
    qwen=dict(
        text_config=dict(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            tokens_per_second=2,
        ),
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=True,
    ),
    encoder=dict(
        num_image_queries=256,
        num_video_queries=512,
        num_ref_queries=768,
        lora_rank=64,
        lora_alpha=64,
        max_frames=16,
        max_pixels_per_frame=262144,
        max_ref_pixels=28 * 28 * 768,
        max_image_pixels=16384 * 28 * 28,
    ),
)

CONFIGS: dict[str, KiwiModelConfig] = {"tiny": TINY, "kiwi-5b": KIWI_5B}


def get_config(name: str) -> KiwiModelConfig:
    """Look up a named size; the error lists the valid names so a CLI can show it as-is."""
    try:
        return CONFIGS[name].copy()
    except KeyError:
        raise ValueError(f"unknown model config {name!r} (choose from: {', '.join(CONFIGS)})") from None
