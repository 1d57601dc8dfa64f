"""Upstream DiffSynth training checkpoints read as data: key maps to our names and the split by part.

Kept apart from the importer (`model/import_upstream.py`), which applies these parts to a base
checkpoint, so the naming rules (upstream `convert_weights.py`, 223572d) can be read and tested alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch

from model.pipeline import CheckpointError

TRAINING_CHECKPOINT = "a DiffSynth Kiwi-Edit training checkpoint (dit.*, mllm.*, vae_condition.* keys)"

# DiffSynth WanModel -> diffusers WanTransformer3DModel (upstream convert_weights.py, same table).
_DIT_TOP = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head.head": "proj_out",
}
_DIT_BLOCK = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "norm3": "norm2",  # DiffSynth norm1/norm2 have no weights; its norm3 (cross-attn) is diffusers' norm2
}
_DIT_PREFIXES = ("blocks.", "patch_embedding.", "text_embedding.", "time_embedding.", "time_projection.",
                 "img_emb.", "head.")  # fmt: skip
_LORA = re.compile(r"^(?P<target>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")
_QUERIES = re.compile(r"^mllm\.(image|video|ref)_queries\.q$")
_CONNECTOR = re.compile(r"^mllm\.(ref_)?(?:connetor|connector)\.([02]\.(?:weight|bias))$")
_EMBEDDERS = {"vae_condition.": "source_embedder", "ref_vae_condition.": "ref_embedder"}


def dit_key_to_diffusers(key: str) -> str | None:
    """One DiffSynth DiT key (`blocks.3.self_attn.q.weight`) -> diffusers (`blocks.3.attn1.to_q.weight`)."""
    if key == "head.modulation":
        return "scale_shift_table"
    m = re.match(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$", key)
    if m:
        i, module, param = m.groups()
        return f"blocks.{i}.{_DIT_BLOCK[module]}.{param}" if module in _DIT_BLOCK else None
    m = re.match(r"^blocks\.(\d+)\.modulation$", key)
    if m:
        return f"blocks.{m.group(1)}.scale_shift_table"
    m = re.match(r"^(.+)\.(weight|bias)$", key)
    if m and m.group(1) in _DIT_TOP:
        return f"{_DIT_TOP[m.group(1)]}.{m.group(2)}"
    return None


def qwen_key_to_encoder(key: str) -> str | None:
    """`mllm.model.<Qwen2_5_VLForConditionalGeneration key>` -> `MLLMEncoder` key (`qwen_model.*`), or None
    for weights our encoder has no place for (`lm_head`: Kiwi-Edit reads hidden states only)."""
    path = key[len("mllm.model.") :].replace("model.model", "model")  # upstream's own normalisation
    if path.startswith("model.language_model.") or path.startswith("model.visual."):
        return "qwen_model." + path[len("model.") :]
    if path.startswith("model.layers.") or path in ("model.embed_tokens.weight", "model.norm.weight"):
        return "qwen_model.language_model." + path[len("model.") :]  # transformers < 4.52 naming
    if path.startswith("visual."):
        return "qwen_model." + path
    return None


@dataclass
class TrainingCheckpoint:
    """A DiffSynth training state dict split by destination (keys already normalised)."""

    dit: dict[str, torch.Tensor] = field(default_factory=dict)  # DiffSynth DiT names
    dit_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # target -> (B, A)
    qwen: dict[str, torch.Tensor] = field(default_factory=dict)  # `mllm.model.*` full weights
    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # mllm target -> (B, A)
    encoder: dict[str, torch.Tensor] = field(default_factory=dict)  # MLLMEncoder keys (queries, connectors)
    embedders: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # component -> state
    ignored: list[str] = field(default_factory=list)


def normalize_training_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the `pipe.` and `dit.` prefixes DiffSynth leaves (as upstream's `normalize_checkpoint_keys`),
    and `diffusion_model.` (DiT LoRA files, which upstream's LoRA merge also strips)."""
    out = {}
    for key, value in state.items():
        for prefix in ("pipe.", "dit.", "diffusion_model."):
            key = key[len(prefix) :] if key.startswith(prefix) else key
        out[key] = value
    return out


def split_training_checkpoint(state: dict[str, torch.Tensor], source: str | os.PathLike) -> TrainingCheckpoint:
    """Sort a training state dict by destination; unknown keys raise CheckpointError naming `source`."""
    state = normalize_training_keys(state)
    ckpt, unknown, lora_halves = TrainingCheckpoint(), [], {}
    for key, value in state.items():
        m = _LORA.match(key)
        if m:
            lora_halves.setdefault(m.group("target"), {})[m.group("ab")] = value
            continue
        if (q := _QUERIES.match(key)) is not None:
            ckpt.encoder[f"{q.group(1)}_queries"] = value
        elif (c := _CONNECTOR.match(key)) is not None:
            ckpt.encoder[f"{c.group(1) or ''}connector.{c.group(2)}"] = value
        elif key.startswith("mllm.model.") and qwen_key_to_encoder(key):
            ckpt.qwen[key] = value
        elif key.startswith("mllm.model."):
            ckpt.ignored.append(key)  # e.g. lm_head: the encoder reads hidden states only
        elif key.startswith(tuple(_EMBEDDERS)):
            prefix = next(p for p in _EMBEDDERS if key.startswith(p))
            ckpt.embedders.setdefault(_EMBEDDERS[prefix], {})[key[len(prefix) :]] = value
        elif key.startswith(_DIT_PREFIXES):
            ckpt.dit[key] = value
        else:
            unknown.append(key)
    for target, halves in lora_halves.items():
        if set(halves) != {"A", "B"}:
            lacking = "lora_B" if "A" in halves else "lora_A"
            raise CheckpointError(f"{source} has a LoRA for {target} without its {lacking} half")
        pair = (halves["B"], halves["A"])
        if target.startswith("mllm.model."):
            ckpt.qwen_lora[target] = pair
        elif target.startswith(_DIT_PREFIXES):
            ckpt.dit_lora[target] = pair
        else:
            unknown.append(target + ".lora_A/B")
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} keys outside the Kiwi-Edit training layout (e.g. {', '.join(unknown[:3])}); "
            f"expected {TRAINING_CHECKPOINT}"
        )
    if not (ckpt.dit or ckpt.dit_lora or ckpt.qwen or ckpt.qwen_lora or ckpt.encoder or ckpt.embedders):
        raise CheckpointError(f"{source} holds no Kiwi-Edit weights; expected {TRAINING_CHECKPOINT}")
    return ckpt
