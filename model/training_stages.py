"""Which parameters each training stage updates (docs/contract.md §3), as one requires_grad switch."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

# Rules are matched against "<component>.<parameter name>"; each stage adds to the previous one.
_STAGE_RULES: dict[int, list[str]] = {
    1: ["mllm_encoder.image_queries", "mllm_encoder.connector.", "lora:mllm_encoder."],
    2: ["transformer.", "source_embedder.", "mllm_encoder.video_queries"],
    3: ["mllm_encoder.ref_queries", "mllm_encoder.ref_connector.", "ref_embedder."],
}
# Present for layout compatibility but never used in the forward (T5 projection is bypassed).
_NEVER_TRAINED = ("transformer.condition_embedder.text_embedder.",)
_MODULE_NAMES = ("transformer", "mllm_encoder", "source_embedder", "ref_embedder", "vae")


def _modules(pipeline_or_modules: object) -> dict[str, nn.Module]:
    if isinstance(pipeline_or_modules, Mapping):
        return {k: v for k, v in pipeline_or_modules.items() if isinstance(v, nn.Module)}
    return {
        n: getattr(pipeline_or_modules, n)
        for n in _MODULE_NAMES
        if isinstance(getattr(pipeline_or_modules, n, None), nn.Module)
    }


def _matches(name: str, rule: str) -> bool:
    if rule.startswith("lora:"):
        return name.startswith(rule[5:]) and ".lora_" in name
    return name.startswith(rule)


def stage_rules(stage: int) -> list[str]:
    if stage not in _STAGE_RULES:
        raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
    return [r for s in range(1, stage + 1) for r in _STAGE_RULES[s]]


def apply_stage_freezing(pipeline_or_modules: object, stage: int) -> list[str]:
    """Freeze everything, then unfreeze the stage's set; returns the trainable parameter names.

    Stage 1: image queries, query connector, MLLM LoRA. Stage 2: + whole DiT, source embedder,
    video queries. Stage 3: + reference queries, latent connector (`ref_connector`), ref embedder.
    The VAE and the Qwen base weights (vision tower included) are always frozen.
    """
    rules = stage_rules(stage)
    trainable: list[str] = []
    for comp, module in _modules(pipeline_or_modules).items():
        for pname, param in module.named_parameters():
            full = f"{comp}.{pname}"
            on = any(_matches(full, r) for r in rules) and not full.startswith(_NEVER_TRAINED)
            param.requires_grad_(on)
            if on:
                trainable.append(full)
    return trainable
