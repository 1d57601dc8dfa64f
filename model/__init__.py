"""Kiwi-Edit on diffusers + transformers: a plain library (no Dagster, MLflow or DVC).

Exports resolve lazily (PEP 562) so `import model.configs` or the CLI's `--help` stay fast and
do not pull in transformers/diffusers until a class is actually used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CONFIGS": "model.configs",
    "KIWI_5B": "model.configs",
    "TINY": "model.configs",
    "KiwiModelConfig": "model.configs",
    "get_config": "model.configs",
    "QueryConnector": "model.connectors",
    "LatentConnector": "model.connectors",
    "ConditionEmbedder": "model.embedders",
    "KiwiTransformer": "model.transformer",
    "MLLMEncoder": "model.mllm_encoder",
    "EncoderOutput": "model.mllm_encoder",
    "KiwiEditPipeline": "model.pipeline",
    "KiwiEditOutput": "model.pipeline",
    "CheckpointError": "model.pipeline",
    "build_vae": "model.vae",
    "encode_video": "model.vae",
    "decode_latents": "model.vae",
    "convert_original_vae_state_dict": "model.vae",
    "build_tiny_processor": "model.processor",
    "load_processor": "model.processor",
    "flow_matching_loss": "model.loss",
    "sample_flow_matching": "model.loss",
    "FlowMatchingSample": "model.loss",
    "timestep_weights": "model.loss",
    "training_sigmas": "model.loss",
    "inference_sigmas": "model.schedule",
    "euler_step": "model.schedule",
    "sample_flow": "model.schedule",
    "build_pipeline": "model.build",
    "init_checkpoint": "model.build",
    "save_checkpoint": "model.build",
    "init_from_base": "model.from_base",
    "apply_stage_freezing": "model.training_stages",
    "compute_loss": "model.training",
    "TrainingBatch": "model.training",
    "read_video_frames": "model.video_io",
    "read_image": "model.video_io",
    "write_video": "model.video_io",
    "MediaReadError": "model.video_io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
