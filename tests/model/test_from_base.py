"""`kiwi model init --from-base`: a Kiwi checkpoint assembled from local Wan2.2 and Qwen2.5-VL folders."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from model.build import qwen_config_for_tokenizer
from model.configs import TINY
from model.pipeline import KiwiEditPipeline
from model.processor import build_tiny_processor
from tests.model.helpers import random_frames
from tests.model.helpers import run_cli


@pytest.fixture(scope="module")
def base_models(tmp_path_factory):
    """Tiny base models saved in the libraries' own formats (diffusers Wan folder, transformers Qwen folder)."""
    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(42)
    wan_dit = WanTransformer3DModel(**TINY.transformer)
    wan_dit.save_pretrained(root / "wan" / "transformer")
    AutoencoderKLWan(**TINY.vae).save_pretrained(root / "wan" / "vae")
    processor = build_tiny_processor()
    qwen = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**qwen_config_for_tokenizer(TINY.qwen, processor.tokenizer)))
    qwen.save_pretrained(root / "qwen")
    processor.save_pretrained(root / "qwen")
    return root / "wan", root / "qwen", wan_dit, qwen


def test_from_base_copies_base_weights_and_zero_inits_new_parts(base_models, tmp_path):
    """Base DiT and Qwen weights arrive unchanged; connectors, embedders and LoRA B start at zero;
    the assembled checkpoint loads and edits."""
    wan, qwen, wan_dit, qwen_model = base_models
    out = tmp_path / "kiwi"
    code, text = run_cli("model", "init", "--from-base", "--wan", str(wan), "--qwen", str(qwen), "--out", str(out),
                         "--config", "tiny")  # fmt: skip
    assert code == 0, text
    pipe = KiwiEditPipeline.from_pretrained(out)
    assert torch.equal(pipe.transformer.blocks[1].attn1.to_q.weight, wan_dit.blocks[1].attn1.to_q.weight)
    q_proj = pipe.mllm_encoder.qwen_model.language_model.layers[0].self_attn.q_proj
    assert torch.equal(q_proj.base_layer.weight, qwen_model.model.language_model.layers[0].self_attn.q_proj.weight)
    assert torch.equal(pipe.mllm_encoder.qwen_model.visual.blocks[0].attn.qkv.weight,
                       qwen_model.model.visual.blocks[0].attn.qkv.weight)
    assert torch.count_nonzero(q_proj.lora_B["default"].weight) == 0
    for p in (pipe.mllm_encoder.connector[2].weight, pipe.mllm_encoder.ref_connector[2].weight,
              pipe.source_embedder.patch_embedding.weight, pipe.ref_embedder.patch_embedding.weight):
        assert torch.count_nonzero(p) == 0
    assert 0.015 < float(pipe.mllm_encoder.image_queries.detach().std()) < 0.025
    pipe.set_progress_bar_config(disable=True)
    result = pipe("golden hour", random_frames(1), height=32, width=32, num_inference_steps=1, seed=0)
    assert len(result.frames) == 1


def test_from_base_needs_both_paths(base_models, tmp_path):
    """Missing --qwen, or a folder that is not a model, is a one-line user error."""
    wan, qwen, *_ = base_models
    code, text = run_cli("model", "init", "--from-base", "--wan", str(wan), "--out", str(tmp_path / "a"))
    assert code == 2 and "--qwen" in text
    code, text = run_cli("model", "init", "--from-base", "--wan", str(tmp_path), "--qwen", str(qwen),
                         "--out", str(tmp_path / "b"))  # fmt: skip
    assert code == 2 and "not a diffusers model folder" in text
