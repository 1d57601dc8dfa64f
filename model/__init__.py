"""Kiwi-Edit on diffusers + transformers: a plain library (no Dagster, MLflow or DVC)."""

from model.configs import CONFIGS, KIWI_5B, TINY, KiwiModelConfig, get_config
from model.connectors import LatentConnector, QueryConnector
from model.embedders import ConditionEmbedder
from model.loss import FlowMatchingSample, flow_matching_loss, sample_flow_matching, timestep_weights, training_sigmas
from model.mllm_encoder import EncoderOutput, MLLMEncoder
from model.pipeline import CheckpointError, KiwiEditOutput, KiwiEditPipeline
from model.schedule import euler_step, inference_sigmas, sample_flow
from model.transformer import KiwiTransformer

__all__ = [
    "CONFIGS", "KIWI_5B", "TINY", "KiwiModelConfig", "get_config",
    "LatentConnector", "QueryConnector", "ConditionEmbedder",
    "FlowMatchingSample", "flow_matching_loss", "sample_flow_matching", "timestep_weights", "training_sigmas",
    "EncoderOutput", "MLLMEncoder", "CheckpointError", "KiwiEditOutput", "KiwiEditPipeline",
    "euler_step", "inference_sigmas", "sample_flow", "KiwiTransformer",
]  # fmt: skip
