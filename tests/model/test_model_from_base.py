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
from tests.model.helpers import random_frames, run_cli


@pytest.fixture(scope="module")
def base_models(tmp_path_factory):
    """Tiny base models saved in the libraries' own formats (diffusers Wan folder, transformers Qwen folder)."""
    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(42)
    wan_dit = WanTransformer3DModel(**TINY.transformer)
    wan_dit.save_pretrained(root / "wan" / "transformer")
    AutoencoderKLWan(**TINY.vae).save_pretrained(root / "wan" / "vae")
    processor = build_tiny_processor()
    qwen = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**qwen_config_for_tokenizer(TINY.qwen, processor.tokenizer))
    )
    qwen.save_pretrained(root / "qwen")
    processor.save_pretrained(root / "qwen")
    return root / "wan", root / "qwen", wan_dit, qwen


def test_from_base_copies_base_weights_and_zero_inits_new_parts(base_models, tmp_path):
    """Base DiT and Qwen weights arrive unchanged; connectors, embedders and LoRA B start at zero;
    the assembled checkpoint loads and edits."""
    wan, qwen, wan_dit, qwen_model = base_models
    out = tmp_path / "kiwi"
    code, text = run_cli(
        "model", "init", "--from-base", "--wan", str(wan), "--qwen", str(qwen), "--out", str(out), "--config", "tiny"
    )
    assert code == 0, text
    pipe = KiwiEditPipeline.from_pretrained(out)
    assert torch.equal(pipe.transformer.blocks[1].attn1.to_q.weight, wan_dit.blocks[1].attn1.to_q.weight)
    q_proj = pipe.mllm_encoder.qwen_model.language_model.layers[0].self_attn.q_proj
    assert torch.equal(q_proj.base_layer.weight, qwen_model.model.language_model.layers[0].self_attn.q_proj.weight)
    assert torch.equal(
        pipe.mllm_encoder.qwen_model.visual.blocks[0].attn.qkv.weight, qwen_model.model.visual.blocks[0].attn.qkv.weight
    )
    assert torch.count_nonzero(q_proj.lora_B["default"].weight) == 0
    for p in (
        pipe.mllm_encoder.connector[2].weight,
        pipe.mllm_encoder.ref_connector[2].weight,
        pipe.source_embedder.patch_embedding.weight,
        pipe.ref_embedder.patch_embedding.weight,
    ):
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
    code, text = run_cli(
        "model", "init", "--from-base", "--wan", str(tmp_path), "--qwen", str(qwen), "--out", str(tmp_path / "b")
    )
    assert code == 2 and "not a diffusers model folder" in text


def test_pipeline_loads_released_encoder_folder(tiny_pipe, tmp_path):
    """A checkpoint whose mllm_encoder/ is in the released conversion layout (released config names,
    qwen_config.json, Qwen weights in transformers files, queries + `connetor` weights in a diffusers
    file) loads by config and encodes exactly like the encoder it was written from."""
    import json
    import shutil

    from safetensors.torch import save_file

    from model.build import save_checkpoint
    from tests.model.helpers import randomize_zero_init

    randomize_zero_init(tiny_pipe)
    enc = tiny_pipe.mllm_encoder
    with torch.no_grad():  # the released Qwen weights have LoRA merged: keep ours a no-op to compare
        for name, p in enc.named_parameters():
            if ".lora_B." in name:
                p.zero_()
    root = save_checkpoint(tiny_pipe, tmp_path / "released")
    folder = root / "mllm_encoder"
    shutil.rmtree(folder)
    folder.mkdir()
    qwen = Qwen2_5_VLForConditionalGeneration(enc.qwen_model.config)
    qwen.model.load_state_dict(
        {k.replace(".base_layer.", "."): v for k, v in enc.qwen_model.state_dict().items() if ".lora_" not in k}
    )
    qwen.save_pretrained(folder)
    (folder / "config.json").unlink()  # the diffusers config takes that name; Qwen's goes to qwen_config.json
    enc.qwen_model.config.to_json_file(str(folder / "qwen_config.json"))
    c = enc.config
    (folder / "config.json").write_text(
        json.dumps(
            {
                "_class_name": "MLLMEncoder",
                "mllm_model_path": ".",
                "dit_dim": c.dit_dim,
                "hidden_size": 64,
                "num_image_queries": c.num_image_queries,
                "num_video_queries": c.num_video_queries,
                "num_ref_queries": c.num_ref_queries,
                "max_object_token": c.max_ref_pixels // (28 * 28),
                "max_frames": c.max_frames,
                "max_pixels_per_frame": c.max_pixels_per_frame,
            }
        )
    )
    own = {
        k.replace("connector.", "connetor."): v.contiguous()
        for k, v in enc.state_dict().items()
        if not k.startswith("qwen_model.")
    }
    save_file(own, str(folder / "diffusion_pytorch_model.safetensors"))

    loaded = KiwiEditPipeline.from_pretrained(root)
    frames, ref = random_frames(5), random_frames(1, seed=4)[0]
    with torch.no_grad():
        a = enc("swap it", frames, ref, processor=tiny_pipe.processor).context
        b = loaded.mllm_encoder("swap it", frames, ref, processor=loaded.processor).context
    assert torch.count_nonzero(a) > 0
    assert torch.equal(a, b)
