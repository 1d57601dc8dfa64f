"""The kiwi-5b config has the released scale, checked on the meta device (no memory, no weights)."""

from __future__ import annotations

import torch

from model.configs import KIWI_5B
from model.mllm_encoder import MLLMEncoder
from model.transformer import KiwiTransformer
from model.vae import latent_shape


def _count(module, keep=lambda name: True) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if keep(n))


def test_kiwi_5b_parameter_counts_match_paper_scale():
    """DiT ~5B and MLLM (Qwen2.5-VL-3B without LoRA) ~3.75B parameters."""
    with torch.device("meta"):
        dit = KiwiTransformer(**KIWI_5B.transformer)
        enc = MLLMEncoder(qwen_config=KIWI_5B.qwen, dit_dim=KIWI_5B.dit_dim, **KIWI_5B.encoder)
    dit_params = _count(dit)
    qwen_params = _count(enc.qwen_model, lambda n: "lora_" not in n)
    assert 4.9e9 < dit_params < 5.1e9, dit_params
    assert 3.70e9 < qwen_params < 3.80e9, qwen_params
    # the added parts: 256+512+768 queries x 2048 and two 2048->3072->3072 connectors
    assert _count(enc, lambda n: not n.startswith("qwen_model")) == 1536 * 2048 + 2 * (
        2048 * 3072 + 3072 + 3072 * 3072 + 3072
    )


def test_kiwi_5b_token_counts_at_81x704x1280():
    """81x704x1280 is 21x44x80 latents -> 18,480 DiT tokens; a reference adds one latent frame (19,360)."""
    c, f, h, w = latent_shape(KIWI_5B.vae, 81, 704, 1280)
    assert (c, f, h, w) == (48, 21, 44, 80)
    with torch.device("meta"):
        dit = KiwiTransformer(**KIWI_5B.transformer)
    seen: list[int] = []
    dit.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    dit.blocks = dit.blocks[:1]  # one block is enough to observe the sequence length
    x = torch.empty(1, c, f, h, w, device="meta")
    ctx = torch.empty(1, 512, KIWI_5B.dit_dim, device="meta")
    t = torch.full((1,), 500.0, device="meta")
    with torch.no_grad():
        out = dit(x, t, ctx).sample
        out_ref = dit(x, t, ctx, ref_embeds=torch.empty(1, KIWI_5B.dit_dim, 1, h // 2, w // 2, device="meta")).sample
    assert seen == [18480, 19360]
    assert out.shape == out_ref.shape == (1, 48, 21, 44, 80)
