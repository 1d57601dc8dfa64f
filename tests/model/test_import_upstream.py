"""`kiwi model import`: upstream DiffSynth training checkpoints -> our released layout.

Golden data: tests/fixtures/upstream/import/ (tiny checkpoints in upstream's key layout, built from
upstream's own modules, and what upstream's convert_weights.py makes of them; README.md there).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.pipeline import CheckpointError, KiwiEditPipeline
from tests.model.helpers import random_frames, run_cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "import"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
DELTAS = load_file(str(FIXTURE / "expected_lora_deltas.safetensors"))
COMPONENTS = ("transformer", "mllm_encoder", "source_embedder", "ref_embedder")


def _states(pipe: KiwiEditPipeline) -> dict[str, dict[str, torch.Tensor]]:
    return {c: getattr(pipe, c).state_dict() for c in COMPONENTS}


def _effective(encoder_state: dict[str, torch.Tensor], proj: str, scaling: float) -> torch.Tensor:
    """The weight a LoRA-wrapped projection applies: base + scaling * B @ A."""
    base = encoder_state[f"{proj}.base_layer.weight"]
    b, a = encoder_state[f"{proj}.lora_B.default.weight"], encoder_state[f"{proj}.lora_A.default.weight"]
    return base + scaling * (b @ a)


@pytest.fixture(scope="module")
def base_pipe(tiny_ckpt):
    return KiwiEditPipeline.from_pretrained(tiny_ckpt)


def test_stage3_checkpoint_imports_as_upstream_converts_it(tiny_ckpt, base_pipe, tmp_path):
    """Every tensor lands where upstream's converter puts it; the Qwen LoRA is merged like upstream's merge."""
    src = FIXTURE / "stage3_full_dit.safetensors"
    code, output = run_cli("model", "import", str(src), "--base", str(tiny_ckpt), "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert "DiT: 69 tensors" in output and "8 LoRA merged" in output
    imported = KiwiEditPipeline.from_pretrained(tmp_path / "out")
    ours, base, ckpt = _states(imported), _states(base_pipe), load_file(str(src))

    for upstream_key, target in EXPECTED["stage3_full_dit"]["renames"].items():
        component, key = target.split("/", 1)
        source = ckpt["dit." + upstream_key] if component == "transformer" else ckpt[upstream_key]
        assert torch.equal(ours[component][key], source.to(ours[component][key].dtype)), target
    assert len(EXPECTED["stage3_full_dit"]["renames"]) == 69 + 11 + 4

    enc, base_enc = ours["mllm_encoder"], base["mllm_encoder"]
    scaling = imported.mllm_encoder.config.lora_alpha / imported.mllm_encoder.config.lora_rank
    worst = 0.0
    for name in EXPECTED["stage3_full_dit"]["lora_deltas"]:
        qwen_key = name.split("/", 1)[1]  # model.language_model.layers.0.self_attn.q_proj.weight
        proj = "qwen_model." + qwen_key[len("model.") : -len(".weight")]
        want = base_enc[f"{proj}.base_layer.weight"] + DELTAS[f"stage3_full_dit/{name}"]
        worst = max(worst, float((_effective(enc, proj, scaling) - want).abs().max()))
        assert torch.count_nonzero(enc[f"{proj}.lora_B.default.weight"]) == 0
    print(f"max abs diff of merged Qwen LoRA vs upstream merge: {worst:.3g}")
    assert worst < 1e-6
    # what the checkpoint does not hold stays the base's (vision tower, VAE, processor)
    assert torch.equal(
        enc["qwen_model.visual.patch_embed.proj.weight"], base_enc["qwen_model.visual.patch_embed.proj.weight"]
    )
    assert all(torch.equal(v, base_pipe.vae.state_dict()[k]) for k, v in imported.vae.state_dict().items())


def test_lora_only_dit_checkpoint_is_merged_into_the_base(tiny_ckpt, base_pipe, tmp_path):
    from model.import_upstream import import_upstream

    report = import_upstream(FIXTURE / "dit_lora.safetensors", tmp_path / "out", base=tiny_ckpt)
    assert report.dit_lora_merged == 20 and report.dit_tensors == 0
    imported = KiwiEditPipeline.from_pretrained(tmp_path / "out")
    ours, base = imported.transformer.state_dict(), base_pipe.transformer.state_dict()
    names = EXPECTED["dit_lora"]["lora_deltas"]
    worst = max(
        float((ours[n.split("/", 1)[1]] - base[n.split("/", 1)[1]] - DELTAS[f"dit_lora/{n}"]).abs().max())
        for n in names
    )
    print(f"max abs diff of merged DiT LoRA vs upstream merge: {worst:.3g}")
    assert worst < 1e-6
    untouched = set(ours) - {n.split("/", 1)[1] for n in names}
    assert untouched and all(torch.equal(ours[k], base[k]) for k in untouched)


def test_import_round_trip_reproduces_the_trained_model(tiny_ckpt, tmp_path):
    """A trained tiny model written in upstream's key layout (names from the fixture) imports to the same
    function: same DiT weights and the same encoder context (LoRA merged instead of kept separate)."""
    trained = KiwiEditPipeline.from_pretrained(tiny_ckpt)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # what upstream trains: DiT, queries, connectors, embedders, Qwen LoRA
        for module in (trained.transformer, trained.source_embedder, trained.ref_embedder):
            for p in module.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        for name, p in trained.mllm_encoder.named_parameters():
            if name.endswith("_queries") or "connector" in name or ".lora_" in name:
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    upstream_name = {v: k for k, v in EXPECTED["stage3_full_dit"]["renames"].items()}
    ckpt = {}
    for component, state in _states(trained).items():
        for key, value in state.items():
            if f"{component}/{key}" in upstream_name:
                name = upstream_name[f"{component}/{key}"]
                ckpt[("dit." if component == "transformer" else "") + name] = value
            elif ".lora_" in key:  # qwen_model.X.lora_A.default.weight -> mllm.model.model.X.lora_A.default.weight
                ckpt["mllm.model.model." + key[len("qwen_model.") :]] = value
    assert len(ckpt) == 84 + 16
    save_file({k: v.contiguous() for k, v in ckpt.items()}, str(tmp_path / "step-500.safetensors"))

    from model.import_upstream import import_upstream

    import_upstream(tmp_path / "step-500.safetensors", tmp_path / "out", base=tiny_ckpt)
    imported = KiwiEditPipeline.from_pretrained(tmp_path / "out")
    for key, value in trained.transformer.state_dict().items():
        assert torch.equal(imported.transformer.state_dict()[key], value), key
    frames = random_frames(5, 64, 64, seed=4)
    with torch.no_grad():
        want = trained.mllm_encoder("make it snow", frames, processor=trained.processor).context
        got = imported.mllm_encoder("make it snow", frames, processor=imported.processor).context
    print(f"max abs diff of encoder context after import: {float((got - want).abs().max()):.3g}")
    assert torch.count_nonzero(want) > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    imported.set_progress_bar_config(disable=True)
    out = imported("make it snow", frames, num_inference_steps=1, seed=0, output_type="latent")
    assert torch.isfinite(out.latents).all()


def test_a_released_checkpoint_folder_is_resaved_in_our_layout(tiny_ckpt, tmp_path):
    """A folder whose vae/ is in the released Wan2.2 layout comes out with a diffusers vae/."""
    src = tmp_path / "released"
    shutil.copytree(tiny_ckpt, src)
    shutil.rmtree(src / "vae")
    shutil.copytree(FIXTURE.parent / "vae", src / "vae", ignore=shutil.ignore_patterns("*.npz", "*.md", "*.json"))
    (src / "vae" / "config.json").write_text((FIXTURE.parent / "vae" / "config.json").read_text())
    code, output = run_cli("model", "import", str(src), "--out", str(tmp_path / "out"), "--ref-pad-first")
    assert code == 0, output
    assert json.loads((tmp_path / "out" / "vae" / "config.json").read_text())["_class_name"] == "AutoencoderKLWan"
    pipe = KiwiEditPipeline.from_pretrained(tmp_path / "out")
    assert pipe.ref_embedder.config.ref_pad_first is True
    released = KiwiEditPipeline.from_pretrained(src)
    assert all(torch.equal(v, released.vae.state_dict()[k]) for k, v in pipe.vae.state_dict().items())


def test_key_names_cover_upstream_variants():
    from model.upstream_checkpoint import dit_key_to_diffusers, qwen_key_to_encoder, split_training_checkpoint

    assert dit_key_to_diffusers("blocks.7.norm3.weight") == "blocks.7.norm2.weight"
    assert dit_key_to_diffusers("blocks.7.modulation") == "blocks.7.scale_shift_table"
    assert dit_key_to_diffusers("head.modulation") == "scale_shift_table"
    assert dit_key_to_diffusers("time_projection.1.bias") == "condition_embedder.time_proj.bias"
    assert dit_key_to_diffusers("blocks.0.norm1.weight") is None  # DiffSynth norm1 has no weights
    q = "language_model.layers.0.self_attn.q_proj.weight"
    assert qwen_key_to_encoder("mllm.model.model." + q) == "qwen_model." + q
    assert qwen_key_to_encoder("mllm.model.model.layers.0.self_attn.q_proj.weight") == "qwen_model." + q  # old naming
    assert qwen_key_to_encoder("mllm.model.lm_head.weight") is None
    ckpt = split_training_checkpoint(
        {
            "pipe.mllm.ref_connetor.2.bias": torch.zeros(1),
            "pipe.mllm.model.lm_head.weight": torch.zeros(1),
            "pipe.dit.blocks.0.ffn.0.lora_A.weight": torch.zeros(1),  # DiffSynth LoRA without `.default`
            "pipe.dit.blocks.0.ffn.0.lora_B.weight": torch.zeros(1),
        },
        "x.safetensors",
    )
    assert set(ckpt.encoder) == {"ref_connector.2.bias"} and ckpt.ignored == ["mllm.model.lm_head.weight"]
    assert set(ckpt.dit_lora) == {"blocks.0.ffn.0"}


# -- bad input: one line, naming the file and what was expected ----------------------------------
def _cli_error(*args: str) -> str:
    code, output = run_cli("model", "import", *args)
    assert code == 2, output
    assert output.startswith("error: ") and "\n" not in output.strip(), output
    return output


def test_a_folder_in_neither_layout(tiny_ckpt, tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    save_file({"x": torch.zeros(1)}, str(folder / "epoch-0.safetensors"))
    out = tmp_path / "out"
    message = _cli_error(str(folder), "--out", str(out))
    assert str(folder) in message and "neither a checkpoint folder" in message and "transformer/" in message
    assert "epoch-0.safetensors" in message  # the hint names the file to pass instead
    assert not out.exists()


def test_a_truncated_safetensors(tiny_ckpt, tmp_path):
    src = tmp_path / "step-1000.safetensors"
    data = (FIXTURE / "stage3_full_dit.safetensors").read_bytes()
    src.write_bytes(data[: len(data) - 5000])
    out = tmp_path / "out"
    message = _cli_error(str(src), "--base", str(tiny_ckpt), "--out", str(out))
    assert str(src) in message and "truncated" in message and "training checkpoint" in message
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [src.name]  # nothing half-written


def test_a_vae_of_the_wrong_z_dim(tiny_ckpt, tmp_path):
    from tests.model.test_vae_wan22 import write_released_vae

    vae = write_released_vae(tmp_path / "wan21vae", z_dim=16) / "diffusion_pytorch_model.safetensors"
    out = tmp_path / "out"
    message = _cli_error(
        str(FIXTURE / "dit_lora.safetensors"), "--base", str(tiny_ckpt), "--vae", str(vae), "--out", str(out)
    )
    assert str(vae) in message and "z_dim 16" in message and "z_dim 48" in message
    assert not out.exists()


def test_a_processor_folder_missing_its_tokenizer(tiny_ckpt, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_ckpt, base)
    (base / "processor" / "tokenizer.json").unlink()
    out = tmp_path / "out"
    message = _cli_error(str(FIXTURE / "dit_lora.safetensors"), "--base", str(base), "--out", str(out))
    assert str(base / "processor") in message and "tokenizer.json" in message
    assert not out.exists()


def test_other_bad_inputs_are_one_line_checkpoint_errors(tiny_ckpt, tmp_path):
    from model.import_upstream import import_upstream

    src = FIXTURE / "dit_lora.safetensors"
    cases = {
        "no base": (dict(src=src), "pass --base"),
        "unknown keys": (
            dict(src=tmp_path / "odd.safetensors", base=tiny_ckpt),
            "outside the Kiwi-Edit training layout",
        ),
        "lonely LoRA half": (dict(src=tmp_path / "half.safetensors", base=tiny_ckpt), "without its lora_A half"),
        "wrong size": (dict(src=tmp_path / "big.safetensors", base=tiny_ckpt), "different model size"),
    }
    save_file({"text_encoder.weight": torch.zeros(2)}, str(tmp_path / "odd.safetensors"))
    save_file(
        {"dit.blocks.0.self_attn.q.lora_B.default.weight": torch.zeros(32, 4)}, str(tmp_path / "half.safetensors")
    )
    save_file({"mllm.image_queries.q": torch.zeros(256, 64)}, str(tmp_path / "big.safetensors"))
    for name, (kwargs, expected) in cases.items():
        with pytest.raises(CheckpointError) as exc:
            import_upstream(out=tmp_path / "out", **kwargs)
        assert expected in str(exc.value) and "\n" not in str(exc.value), name
        assert not (tmp_path / "out").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    message = _cli_error(str(src), "--base", str(tiny_ckpt), "--out", str(tmp_path / "full"))
    assert "--overwrite" in message
