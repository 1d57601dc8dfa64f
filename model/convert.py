"""Key converters for weights saved by other Kiwi-Edit code (released encoder, original Wan VAE)."""

from __future__ import annotations

import re

import torch

from model.vae import convert_original_vae_state_dict

__all__ = ["convert_encoder_state_dict", "convert_original_vae_state_dict", "load_qwen_weights"]

# An earlier training code spelled the connector "connetor"; the released weights say "connector".
_RENAMES = [(re.compile(r"(^|\.)(ref_)?connetor\."), r"\1\2connector.")]


def convert_encoder_state_dict(
    state_dict: dict[str, torch.Tensor], lora_wrapped_keys: set[str] | None = None
) -> dict[str, torch.Tensor]:
    """Map released / older encoder keys onto `MLLMEncoder` keys.

    - `connetor.*` / `ref_connetor.*` -> `connector.*` / `ref_connector.*`
    - if `lora_wrapped_keys` (our model's keys) is given, a plain `...q_proj.weight` is routed to
      `...q_proj.base_layer.weight` where LoRA wraps that projection (merged or base weights).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in _RENAMES:
            key = pattern.sub(repl, key)
        if lora_wrapped_keys is not None and key not in lora_wrapped_keys:
            wrapped = re.sub(r"\.(weight|bias)$", r".base_layer.\1", key)
            if wrapped in lora_wrapped_keys:
                key = wrapped
        out[key] = value
    return out


def load_qwen_weights(encoder: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy `Qwen2_5_VLModel` weights into the LoRA-wrapped `encoder.qwen_model` (LoRA left as is).

    Raises KeyError naming missing tensors when the source is not a matching Qwen2.5-VL model.
    """
    target = encoder.qwen_model.state_dict()
    mapped = {
        k: state_dict[k.replace(".base_layer.", ".")] for k in target if k.replace(".base_layer.", ".") in state_dict
    }
    missing = [k for k in target if k not in mapped and ".lora_" not in k]
    if missing:
        raise KeyError(f"Qwen weights lack {len(missing)} tensors, e.g. {missing[:3]}")
    encoder.qwen_model.load_state_dict(mapped, strict=False)
