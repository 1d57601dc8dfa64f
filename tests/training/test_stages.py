"""Trainable sets per stage (docs/contract.md §3.3): gradients, requires_grad, and what one optimizer step moves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kiwi_platform.training import train
from kiwi_platform.training.data import SampleLoader, load_manifest
from kiwi_platform.training.fixtures import TrainingFixture
from kiwi_platform.training.modules import COMPONENTS, PipelineLoss

from .conftest import fast_config

# Parameter-name prefixes each stage adds ("lora" = any LoRA weight of the MLLM encoder).
GROUPS = {
    1: ["mllm_encoder.image_queries", "mllm_encoder.connector.", "lora"],
    2: ["transformer.blocks.", "source_embedder.", "mllm_encoder.video_queries"],
    3: ["mllm_encoder.ref_queries", "mllm_encoder.ref_connector.", "ref_embedder."],
}


def _in_group(name: str, group: str) -> bool:
    return (name.startswith("mllm_encoder.") and ".lora_" in name) if group == "lora" else name.startswith(group)


def _state(pipeline) -> dict[str, torch.Tensor]:
    return {f"{c}.{n}": p.detach().clone() for c in COMPONENTS for n, p in getattr(pipeline, c).named_parameters()}


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_one_step_moves_exactly_the_stage_parameters(
    stage: int, training_data: TrainingFixture, tmp_path: Path
) -> None:
    """After two optimizer steps only the stage's parameters differ from the start; each of its groups moved.

    Two steps, because zero-initialised output layers (connectors, LoRA B) block every other gradient
    on the very first step.
    """
    from model import KiwiEditPipeline, build_pipeline

    before = _state(build_pipeline("tiny", seed=0))
    cfg = fast_config(stage=stage, max_steps=2, weight_decay=0.0, seed=0)
    result = train(cfg, training_data.manifest, training_data.data_root, tmp_path)
    after = _state(KiwiEditPipeline.from_pretrained(result.final_dir))
    assert set(before) == set(after)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    trainable = set(result.trainable)
    assert changed <= trainable, f"frozen parameters moved: {sorted(changed - trainable)[:5]}"
    for s in range(1, 4):
        for group in GROUPS[s]:
            members = {n for n in before if _in_group(n, group)}
            assert members, group
            if s <= stage:
                assert members & changed, f"stage {stage}: nothing in {group} was updated"
            else:
                assert not members & trainable, f"stage {stage}: {group} must stay frozen"
    assert not any(n.startswith("vae.") for n in trainable)
    assert not any(n.startswith("mllm_encoder.qwen_model.visual.") for n in trainable)
    assert result.trainable_params == sum(before[n].numel() for n in trainable)


@pytest.mark.parametrize("stage", [1, 3])
def test_gradients_reach_only_trainable_parameters(stage: int, training_data: TrainingFixture) -> None:
    """Backward through the training loss leaves frozen params without .grad and gives the stage's params one."""
    from model import apply_stage_freezing, build_pipeline

    pipeline = build_pipeline("tiny", seed=0)
    trainable = set(apply_stage_freezing(pipeline, stage))
    with torch.no_grad():  # zero-init output layers would block all gradients behind them
        for c in COMPONENTS:
            for p in getattr(pipeline, c).parameters():
                if p.requires_grad and not p.any():
                    p.normal_(0.0, 0.02)
    module = PipelineLoss(pipeline)
    df = load_manifest(training_data.manifest)
    loader = SampleLoader(df, training_data.data_root)
    tasks = ["image"] if stage == 1 else ["image", "video", "video_ref"]
    for task in tasks:
        module(loader.load(df.index[df["task"] == task][0], 64, 96, 5), seed=1).backward()
    params = {f"{c}.{n}": p for c in COMPONENTS for n, p in getattr(pipeline, c).named_parameters()}
    for name, p in params.items():
        assert p.requires_grad == (name in trainable), name
        if name not in trainable:
            assert p.grad is None, name
    for s in range(1, stage + 1):
        for group in GROUPS[s]:
            grads = [params[n].grad for n in trainable if _in_group(n, group)]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient reached {group}"


def test_next_stage_starts_from_the_previous_stage_weights(training_data: TrainingFixture, tmp_path: Path) -> None:
    """Stage 2 initialised from stage 1's final folder starts at stage 1's final validation loss exactly."""
    s1 = train(
        fast_config(stage=1, max_steps=2, eval_every=2, lr=1e-2),
        training_data.manifest,
        training_data.data_root,
        tmp_path / "s1",
    )
    s2 = train(
        fast_config(stage=2, max_steps=1, eval_every=1, init_checkpoint=str(s1.final_dir)),
        training_data.manifest,
        training_data.data_root,
        tmp_path / "s2",
    )
    fresh = train(
        fast_config(stage=2, max_steps=1, eval_every=1),
        training_data.manifest,
        training_data.data_root,
        tmp_path / "fresh",
    )
    assert s2.val_losses[0] == (0, pytest.approx(s1.val_losses[-1][1], rel=1e-6))
    assert s1.val_losses[0][1] == pytest.approx(fresh.val_losses[0][1], rel=1e-6)
    assert s1.val_losses[-1][1] != pytest.approx(s1.val_losses[0][1], rel=1e-4)  # stage 1 changed something
