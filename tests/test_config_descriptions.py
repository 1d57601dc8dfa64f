"""Launchpad config explains itself: every run-config field of every asset has a description.

The Dagster Launchpad shows a field's name, type, default and description; without the
description a new user sees `lr: null` and has to read the code. One test per asset, so a
failure names the asset whose config is missing words.
"""

from __future__ import annotations

import warnings

import dagster as dg
import pytest
from dagster._config import ConfigTypeKind

import assets
from kiwi_platform.training.config import Resolution, TrainConfig

warnings.filterwarnings("ignore", category=dg.PreviewWarning)
ASSETS = [a for a in dg.load_assets_from_package_module(assets) if isinstance(a, dg.AssetsDefinition)]
CONFIGURED = {a.key.to_user_string(): a for a in ASSETS if a.op.config_field is not None}


def _undescribed(config_type, path: str = "") -> list[str]:
    """Field paths (a.b.c) under `config_type` whose description is empty, through lists and optionals."""
    kind = config_type.kind
    if kind in (ConfigTypeKind.NONEABLE, ConfigTypeKind.ARRAY):
        return _undescribed(config_type.inner_type, path)
    if kind not in (ConfigTypeKind.STRICT_SHAPE, ConfigTypeKind.PERMISSIVE_SHAPE, ConfigTypeKind.SELECTOR):
        return []
    missing = []
    for name, field in config_type.fields.items():
        where = f"{path}.{name}" if path else name
        if not (field.description or "").strip():
            missing.append(where)
        missing += _undescribed(field.config_type, where)
    return missing


def test_the_assets_that_take_config_are_found() -> None:
    """The walk below sees the configurable assets of every stage (a loader change cannot empty it)."""
    assert {"raw_edit_pairs", "edit_regions", "quadruplets", "stage1_checkpoint", "benchmark_results"} <= set(
        CONFIGURED
    )


@pytest.mark.parametrize("asset", sorted(CONFIGURED))
def test_every_config_field_has_a_description(asset: str) -> None:
    """Each run-config field of `asset` carries a description for the Launchpad."""
    config_type = CONFIGURED[asset].op.config_field.config_type
    assert _undescribed(config_type) == [], f"{asset}: config fields without a description"


@pytest.mark.parametrize("asset", sorted(CONFIGURED))
def test_choice_fields_list_their_values(asset: str) -> None:
    """A backend/precision/strategy choice is an enum in the schema, so the Launchpad offers its values."""
    fields = CONFIGURED[asset].op.config_field.config_type.fields
    choices = {"grounder", "segmenter", "inpainter", "judge", "embedder", "mixed_precision", "distributed"}
    for name in choices & set(fields):
        assert fields[name].config_type.kind == ConfigTypeKind.ENUM, f"{asset}.{name} is free text"


def test_stage_lr_default_is_none_and_named() -> None:
    """`lr` defaults to null, not a magic 0.0, and the description names the stage defaults it stands for."""
    field = CONFIGURED["stage1_checkpoint"].op.config_field.config_type.fields["lr"]
    assert field.default_value is None
    assert "1e-5" in field.description and "5e-6" in field.description and "3e-3" in field.description


def test_train_config_fields_are_described() -> None:
    """The training library's own config (used by the CLI, Pipes pods and benchmarks) documents each field."""
    for model in (TrainConfig, Resolution):
        missing = [name for name, f in model.model_fields.items() if not (f.description or "").strip()]
        assert missing == [], f"{model.__name__}: fields without a description"
