"""The installed stack: versions we depend on, and the definitions load."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest
from packaging.version import Version


def test_dvc_3_and_dagster_string_selection_coexist():
    """DVC 3 is installed (not the 2.x fallback pip picks when antlr4 is pinned in pyproject) and
    Dagster's string selection parser works with the antlr4 runtime we install after it."""
    import dvc

    assert Version(dvc.__version__) >= Version("3.0")
    selection = dg.AssetSelection.from_string("+normalized_clips")
    assert "normalized_clips" in str(selection)


def test_definitions_load_with_every_ingestion_asset_and_check(kiwi_home):
    """The code location the UI loads has the ingestion assets, their blocking checks and resources."""
    from kiwi_platform.env import prepare_environment

    prepare_environment()
    from kiwi_platform.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_edit_pairs", "normalized_clips"} <= keys
    checks = {k.name for k in graph.asset_check_keys}
    assert {"raw_rows_accounted", "raw_pairs_valid", "normalized_clips_valid"} <= checks


@pytest.mark.parametrize(("preset", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_arrow_allocates_from_the_system_pool_unless_the_environment_chose_one(preset, expected):
    """A fresh process that imports the platform and then reads a parquet table allocates Arrow memory
    from the system allocator (what keeps a stage's memory flat with the batch), and a pool the
    operator set in the environment is kept."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if preset:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    code = "import kiwi_platform, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
