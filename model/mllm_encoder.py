"""Qwen2.5-VL encoder with LoRA and learnable queries: instruction + source (+ reference) -> DiT context."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from peft import LoraConfig, inject_adapter_in_model
from PIL import Image
from torch import nn
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

from model.connectors import LatentConnector, QueryConnector
from model.prompt import PLACEHOLDER_TOKEN, SYSTEM_PROMPT, build_prompt

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class EncoderOutput:
    """`context` is what the DiT cross-attends to: [reference tokens | query tokens]."""

    context: torch.Tensor  # (1, R + N, dit_dim)
    query_features: torch.Tensor  # (1, N, dit_dim), after the query connector
    ref_features: torch.Tensor | None  # (1, R, dit_dim), after the latent connector
    mode: str
    input_ids: torch.Tensor


class MLLMEncoder(ModelMixin, ConfigMixin):
    """Qwen2.5-VL (vision tower frozen, LoRA on the text decoder's q/k/v/o) + queries + connectors.

    The learnable queries of the active mode (image / video / reference) replace the embeddings
    of the `<|object_ref_start|>` placeholders; their final-layer states (after the final norm)
    go through `connector`. In reference mode the reference image's own vision-token states go
    through `ref_connector`. By default the query features are the *last N positions* of the
    sequence (the released weights were trained that way; the template's closing tokens are
    included and the first queries missed); `exact_query_positions=True` reads the placeholder
    positions instead.
    """

    @register_to_config
    def __init__(
        self,
        qwen_config: dict[str, Any] | None = None,
        dit_dim: int = 3072,
        num_image_queries: int = 256,
        num_video_queries: int = 512,
        num_ref_queries: int = 768,
        lora_rank: int = 64,
        lora_alpha: int = 64,
        lora_targets: Sequence[str] = LORA_TARGETS,
        max_frames: int = 16,
        max_pixels_per_frame: int = 262144,
        max_ref_pixels: int = 28 * 28 * 768,
        max_image_pixels: int = 16384 * 28 * 28,
        exact_query_positions: bool = False,
        system_prompt: str = SYSTEM_PROMPT,
        attn_implementation: str = "sdpa",
        video_fps: float = 2.0,  # temporal RoPE spacing the released weights were trained with (upstream default)
    ) -> None:
        super().__init__()
        qwen_cfg = Qwen2_5_VLConfig(**(qwen_config or {}))
        qwen_cfg._attn_implementation = attn_implementation
        self.qwen_model = Qwen2_5_VLModel(qwen_cfg)
        hidden = qwen_cfg.text_config.hidden_size
        if lora_rank > 0:
            lora = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, target_modules=list(lora_targets), lora_dropout=0.0)
            inject_adapter_in_model(lora, self.qwen_model.language_model)
        self.image_queries = nn.Parameter(torch.randn(num_image_queries, hidden) * 0.02)
        self.video_queries = nn.Parameter(torch.randn(num_video_queries, hidden) * 0.02)
        self.ref_queries = nn.Parameter(torch.randn(num_ref_queries, hidden) * 0.02)
        self.connector = QueryConnector(hidden, dit_dim)
        self.ref_connector = LatentConnector(hidden, dit_dim)
        self.qwen_model.visual.requires_grad_(False)
        self.processor = None  # set by the pipeline (saved separately under processor/)

    def enable_gradient_checkpointing(self, **kwargs: Any) -> None:
        """Recompute Qwen decoder/vision blocks in backward (transformers' own mechanism)."""
        self.qwen_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def disable_gradient_checkpointing(self) -> None:
        self.qwen_model.gradient_checkpointing_disable()

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Diffusers save plus `qwen_config.json` (the Qwen config file name the released layout uses)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        self.qwen_model.config.to_json_file(os.path.join(save_directory, "qwen_config.json"))

    # -- helpers -----------------------------------------------------------------
    def queries_for(self, mode: str) -> nn.Parameter:
        return {"image": self.image_queries, "video": self.video_queries, "reference": self.ref_queries}[mode]

    @property
    def num_queries(self) -> dict[str, int]:
        c = self.config
        return {"image": c.num_image_queries, "video": c.num_video_queries, "reference": c.num_ref_queries}

    def prepare_inputs(
        self, prompt: str, source: Sequence[Image.Image], ref_image: Image.Image | None = None, processor: Any = None
    ) -> tuple[dict[str, torch.Tensor], str, int]:
        """Chat prompt -> processor tensors (kept separate so the data pipeline can cache them)."""
        processor = processor or self.processor
        if processor is None:
            raise ValueError("MLLMEncoder needs a Qwen2.5-VL processor (pass processor= or set .processor)")
        if len(source) == 0:
            raise ValueError("the encoder needs at least one source frame")
        c = self.config
        built = build_prompt(
            prompt,
            list(source),
            ref_image,
            self.num_queries,
            c.max_frames,
            c.max_pixels_per_frame,
            c.max_ref_pixels,
            c.max_image_pixels,
            c.system_prompt,
        )
        text = processor.apply_chat_template(built.messages, tokenize=False, add_generation_prompt=False)
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if built.images:
            kwargs["images"] = built.images
        if built.videos:
            # frames are already resized within the per-frame cap; opt into the reference behaviour
            kwargs.update(videos=built.videos, cap_pixels_per_frame=True)
        try:
            inputs = dict(processor(**kwargs))
        except TypeError:  # processors that predate the flag
            kwargs.pop("cap_pixels_per_frame", None)
            inputs = dict(processor(**kwargs))
        if built.videos and "second_per_grid_ts" in inputs:
            # The released weights saw Qwen's temporal RoPE at the processor's old 2-fps default (one
            # second per temporal grid). transformers 5.x assumes 24 fps without video metadata, which
            # squeezes the frame order into ~1 position: pin the upstream spacing.
            tps = getattr(getattr(processor, "video_processor", None), "temporal_patch_size", 2)
            inputs["second_per_grid_ts"] = torch.full((len(built.videos),), tps / self.config.video_fps)
        return inputs, built.mode, built.num_queries

    def forward(
        self,
        prompt: str,
        source: Sequence[Image.Image],
        ref_image: Image.Image | None = None,
        processor: Any = None,
    ) -> EncoderOutput:
        """Encode one sample: instruction `prompt`, source frames (1 = image), optional reference."""
        inputs, mode, n = self.prepare_inputs(prompt, source, ref_image, processor)
        return self.encode_inputs(inputs, mode, n, processor or self.processor)

    def encode_inputs(self, inputs: dict[str, torch.Tensor], mode: str, n: int, processor: Any) -> EncoderOutput:
        device = self.image_queries.device
        dtype = self.image_queries.dtype
        tok = processor.tokenizer
        placeholder_id = tok.convert_tokens_to_ids(PLACEHOLDER_TOKEN)
        input_ids = inputs["input_ids"].to(device)
        placeholder = input_ids == placeholder_id
        if int(placeholder.sum()) != n:
            raise ValueError(f"prompt holds {int(placeholder.sum())} query placeholders, expected {n}")

        embeds = self.qwen_model.get_input_embeddings()(input_ids)
        queries = self.queries_for(mode).to(embeds.dtype)
        embeds = embeds.masked_scatter(
            placeholder.unsqueeze(-1), queries.unsqueeze(0).expand(input_ids.shape[0], -1, -1)
        )

        model_kwargs = {k: v.to(device) for k, v in inputs.items() if isinstance(v, torch.Tensor) and k != "input_ids"}
        for key in ("pixel_values", "pixel_values_videos"):
            if key in model_kwargs:
                model_kwargs[key] = model_kwargs[key].to(dtype)
        self.qwen_model.rope_deltas = None  # never reuse positions from a previous call
        hidden = self.qwen_model(
            input_ids=input_ids, inputs_embeds=embeds, use_cache=False, **model_kwargs
        ).last_hidden_state

        if self.config.exact_query_positions:
            query_states = hidden[placeholder].view(hidden.shape[0], n, -1)
        else:
            query_states = hidden[:, -n:]
        query_features = self.connector(query_states)

        ref_features = None
        if mode == "reference":
            start_id = tok.convert_tokens_to_ids("<|vision_start|>")
            end_id = tok.convert_tokens_to_ids("<|vision_end|>")
            ids = input_ids[0]
            start = int((ids == start_id).nonzero()[-1])
            end = start + int((ids[start:] == end_id).nonzero()[0])
            ref_features = self.ref_connector(hidden[:, start + 1 : end])
        context = query_features if ref_features is None else torch.cat([ref_features, query_features], dim=1)
        return EncoderOutput(context, query_features, ref_features, mode, input_ids)
