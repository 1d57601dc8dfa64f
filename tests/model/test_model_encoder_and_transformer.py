"""Encoder prompt layout, token counts and the DiT's source/reference injection at tiny size."""

from __future__ import annotations

import torch

from model.configs import TINY
from tests.model.helpers import random_frames, randomize_zero_init


def _dit_inputs(pipe, frames: int = 2, ctx_len: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    dim = pipe.transformer.config.num_attention_heads * pipe.transformer.config.attention_head_dim
    x = torch.randn(1, 48, frames, 4, 6, generator=g)
    ctx = torch.randn(1, ctx_len, dim, generator=g)
    src = torch.randn(1, 48, frames, 4, 6, generator=g)
    ref = torch.randn(1, 48, 1, 4, 6, generator=g)
    return x, ctx, src, ref


def test_encoder_context_token_counts_per_mode(tiny_pipe):
    """Image -> 8 query tokens, video -> 16, video+reference -> reference vision tokens + 24 queries."""
    enc, proc = tiny_pipe.mllm_encoder, tiny_pipe.processor
    n = TINY.encoder
    image = enc("make it golden hour", random_frames(1), processor=proc)
    video = enc("make it golden hour", random_frames(5), processor=proc)
    ref_img = random_frames(1, 56, 56, seed=3)[0]  # 56x56 -> 4x4 patches -> 4 merged tokens
    ref = enc("swap the towel", random_frames(5), ref_img, processor=proc)
    assert (image.mode, video.mode, ref.mode) == ("image", "video", "reference")
    assert image.context.shape == (1, n["num_image_queries"], 32)
    assert video.context.shape == (1, n["num_video_queries"], 32)
    assert ref.ref_features.shape == (1, 4, 32)
    assert ref.context.shape == (1, 4 + n["num_ref_queries"], 32)


def test_prompt_layout_and_last_n_quirk(tiny_pipe):
    """Reference prompts append the released suffix; the default reads the last N positions, which
    end in the template's closing tokens, while exact_query_positions reads the placeholders."""
    enc, proc = tiny_pipe.mllm_encoder, tiny_pipe.processor
    randomize_zero_init(tiny_pipe)
    frames, ref_img = random_frames(3), random_frames(1, seed=5)[0]
    inputs, mode, n = enc.prepare_inputs("swap it", frames, ref_img, processor=proc)
    text = proc.tokenizer.decode(inputs["input_ids"][0])
    assert "swap it Use the reference input from last frame.<|vision_start|><|image_pad|>" in text
    assert text.startswith("<|im_start|>system\nYou will be given an image and instruction.")
    ids = inputs["input_ids"][0]
    placeholder = proc.tokenizer.convert_tokens_to_ids("<|object_ref_start|>")
    assert int((ids[-n:] == placeholder).sum()) == n - 2  # "<|im_end|>" and "\n" close the turn
    quirk = enc("swap it", frames, ref_img, processor=proc).query_features
    enc.register_to_config(exact_query_positions=True)
    exact = enc("swap it", frames, ref_img, processor=proc).query_features
    assert quirk.shape == exact.shape
    assert torch.allclose(quirk[:, :-2], exact[:, 2:], atol=1e-5)  # same positions, shifted by two
    assert not torch.allclose(quirk, exact)


def test_transformer_shapes_and_reference_frame_dropped(tiny_pipe):
    """Image (1 latent frame), video and video+reference all return the target's latent shape."""
    dit = tiny_pipe.transformer
    t = torch.tensor([500.0])
    for frames in (1, 3):
        x, ctx, src, ref = _dit_inputs(tiny_pipe, frames)
        seen: list[int] = []
        hook = dit.blocks[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
        with torch.no_grad():
            plain = dit(x, t, ctx).sample
            with_ref = dit(
                x, t, ctx, source_embeds=tiny_pipe.source_embedder(src), ref_embeds=tiny_pipe.ref_embedder(ref)
            ).sample
        hook.remove()
        assert plain.shape == with_ref.shape == x.shape
        assert seen == [frames * 2 * 3, (frames + 1) * 2 * 3]


def test_zero_init_contract_and_after_one_step(tiny_pipe):
    """At init the source latent, the reference content and the prompt change nothing (zero-init
    embedders/connectors); after one optimizer step each of them does.

    Appending reference tokens does change attention normalisation even when they are zero
    vectors (sequence concatenation, as released), so the reference check compares two different
    reference images rather than "with" vs "without".
    """
    dit, src_emb, ref_emb = tiny_pipe.transformer, tiny_pipe.source_embedder, tiny_pipe.ref_embedder
    enc, proc = tiny_pipe.mllm_encoder, tiny_pipe.processor
    x, _, src, ref_a = _dit_inputs(tiny_pipe, 2)
    ref_b = torch.randn_like(ref_a)
    frames = random_frames(5)
    t = torch.tensor([700.0])

    def outputs():
        ctx_a = enc("make it red", frames, processor=proc).context
        ctx_b = enc("remove the car", frames, processor=proc).context
        return (
            dit(x, t, ctx_a).sample,
            dit(x, t, ctx_a, source_embeds=src_emb(src)).sample,
            dit(x, t, ctx_a, ref_embeds=ref_emb(ref_a)).sample,
            dit(x, t, ctx_a, ref_embeds=ref_emb(ref_b)).sample,
            dit(x, t, ctx_b).sample,
        )

    with torch.no_grad():
        base, with_src, ref1, ref2, other_prompt = outputs()
    assert torch.equal(base, with_src)
    assert torch.equal(ref1, ref2)
    assert torch.equal(base, other_prompt)

    params = [p for m in (dit, src_emb, ref_emb, enc.connector) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-2)
    loss = sum(o.square().mean() for o in outputs())
    loss.backward()
    opt.step()
    with torch.no_grad():
        base, with_src, ref1, ref2, other_prompt = outputs()
    assert not torch.allclose(base, with_src)
    assert not torch.allclose(ref1, ref2)
    assert not torch.allclose(base, other_prompt)


def test_released_connector_spellings_load(tiny_pipe):
    """Encoder weights saved as `connetor` (older training code) or with plain q_proj keys load into ours."""
    from model.convert import convert_encoder_state_dict

    enc = tiny_pipe.mllm_encoder
    ours = enc.state_dict()
    released = {}
    for key, value in ours.items():
        if ".lora_" in key:
            continue
        key = key.replace("connector.", "connetor.").replace(".base_layer.", ".")
        released[key] = torch.randn_like(value)
    converted = convert_encoder_state_dict(released, set(ours))
    missing, unexpected = enc.load_state_dict(converted, strict=False)
    assert not unexpected
    assert all(".lora_" in k for k in missing)
    assert torch.equal(enc.connector[0].weight, released["connetor.0.weight"])
    assert torch.equal(enc.ref_connector[2].bias, released["ref_connetor.2.bias"])
