"""RefVIE assets (edit_regions -> reference_images -> quadruplets) materialized for real on a
synthetic batch, inside the whole graph: real Dagster instance, DVC data repo and MLflow sqlite.

This module also owns the graph every integration module of issues 5-7 shares (`shared_graph`):
the full asset graph (`*`) is materialized once per session over one synthetic batch, in a
KIWI_HOME of its own, and each module enters that KIWI_HOME for its duration (`graph_env`).
Tests that change shared state (alias, files) put it back before they end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kiwi_platform.env import prepare_environment
from kiwi_platform.lib import shards
from kiwi_platform.resources import build_resources
from kiwi_platform.runner import RunOutcome, materialize, register_batch
from tests.integration.conftest import SMALL_RUN_CONFIG
from tests.integration.test_cli import kiwi

BATCH = "synth"
NO_EDIT_ROW = 7  # the row appended to the synthetic manifest: target is a byte copy of the source
STAGE_CONFIG = {"max_steps": 2, "checkpoint_every": 1, "eval_every": 2, "eval_samples": 1, "frames": 5}
FULL_RUN_CONFIG = {
    "ops": {
        **SMALL_RUN_CONFIG["ops"],
        "benchmark_suites": {"config": {"n": 2, "frames": 5, "height": 64, "width": 96}},
        **{f"stage{i}_checkpoint": {"config": STAGE_CONFIG} for i in (1, 2, 3)},
    }
}
ENV_CLEARED = ("KIWI_DATA_DIR", "KIWI_DVC_REMOTE", "KIWI_MLFLOW_TRACKING_URI", "KIWI_LAKEFS_ENABLED")


@dataclass
class Graph:
    """The materialized graph: its KIWI_HOME, the batch's source media, and the run outcomes."""

    home: Path
    media: Path  # the batch's own copy of the synthetic media (manifest.csv + files)
    defs: dg.Definitions
    resources: dict
    outcomes: list[RunOutcome]

    @property
    def batch_outcome(self) -> RunOutcome:
        return next(o for o in self.outcomes if o.partition == BATCH)

    @property
    def global_outcome(self) -> RunOutcome:
        return next(o for o in self.outcomes if o.partition is None)


_SHARED: dict[str, object] = {}


@contextlib.contextmanager
def graph_env(home: Path) -> Iterator[None]:
    """KIWI_HOME / DAGSTER_HOME pointing at `home` (as tests/conftest.py's `kiwi_home` does), undone on exit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIWI_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        for var in ENV_CLEARED:
            mp.delenv(var, raising=False)
        yield


def _add_no_edit_row(media: Path) -> None:
    """Append a pair whose target is a byte-for-byte copy of a fresh source image (nothing was edited)."""
    rng = np.random.default_rng(11)
    img = np.full((64, 96, 3), 235, np.uint8)
    img[10:40, 20:60] = rng.integers(0, 255, size=3, dtype=np.uint8)
    img[30:58, 50:90] = (30, 90, 200)
    Image.fromarray(img).save(media / "src" / "noedit.png")
    shutil.copyfile(media / "src" / "noedit.png", media / "tgt" / "noedit.png")
    with open(media / "manifest.csv", "a", encoding="utf-8") as fh:
        fh.write("Add a red hat to the blue box.,src/noedit.png,tgt/noedit.png\n")


def shared_graph(tmp_path_factory: pytest.TempPathFactory, small_synth: Path) -> Graph:
    """Materialize `*` over the synthetic batch (+ one no-edit row) once per session."""
    if "graph" in _SHARED:
        return _SHARED["graph"]  # type: ignore[return-value]
    if "error" in _SHARED:
        pytest.fail(f"the shared graph could not be built: {_SHARED['error']}")
    root = tmp_path_factory.mktemp("graph")
    media = root / "media"
    shutil.copytree(small_synth.parent, media)
    _add_no_edit_row(media)
    home = root / "kiwi-home"
    try:
        with graph_env(home):
            settings = prepare_environment()
            from kiwi_platform.definitions import build_definitions

            defs = build_definitions()
            resources = build_resources(settings)
            instance = dg.DagsterInstance.get()
            resources["store"].register_batch(BATCH, media / "manifest.csv")
            register_batch(instance, BATCH)
            outcomes = materialize("*", [BATCH], defs=defs, run_config=FULL_RUN_CONFIG)
            instance.dispose()
    except Exception as exc:  # remember, so every module reports it instead of rebuilding
        _SHARED["error"] = repr(exc)
        raise
    _SHARED["graph"] = Graph(home, media, defs, resources, outcomes)
    return _SHARED["graph"]  # type: ignore[return-value]


@contextlib.contextmanager
def entered(graph: Graph) -> Iterator[dg.DagsterInstance]:
    with graph_env(graph.home):
        prepare_environment()
        instance = dg.DagsterInstance.get()
        try:
            yield instance
        finally:
            instance.dispose()


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was never materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def run_metadata(instance: dg.DagsterInstance, run_id: str, asset: str) -> dict:
    """Metadata of `asset` as materialized by run `run_id` (later runs may have re-materialized it)."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    for rec in records:
        if rec.event_log_entry.run_id == run_id:
            return {k: v.value for k, v in rec.asset_materialization.metadata.items()}
    raise AssertionError(f"run {run_id} did not materialize {asset}")


def graph_metadata(instance: dg.DagsterInstance, graph: Graph, asset: str) -> dict:
    """Metadata of an unpartitioned asset from the shared graph's own run."""
    return run_metadata(instance, graph.global_outcome.run_id, asset)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graph(tmp_path_factory, small_synth):
    g = shared_graph(tmp_path_factory, small_synth)
    with entered(g) as instance:
        yield g, instance


# Columns the issue documents for the training-ready table: pair id, prompt, source clip, target
# clip, reference path or none, task type, scores, and the hashes of all inputs.
DOCUMENTED_COLUMNS = {
    "pair_id",
    "prompt",
    "src_clip",
    "tgt_clip",
    "ref_image",
    "task",
    "edit_type",
    "judge_score",
    "type_confidence",
    "dup_similarity",
    "src_clip_sha256",
    "tgt_clip_sha256",
    "ref_sha256",
    "mask_file",
    "mask_sha256",
    "src_sha256",
    "tgt_sha256",
}


@pytest.mark.slow
def test_synth_batch_becomes_quadruplets_with_intact_files_and_passing_checks(graph):
    """edit_regions, reference_images and quadruplets materialize for the batch; the quadruplet table
    has the documented columns, one row per pair id, every referenced file exists and matches its
    sha256, and the blocking Great Expectations checks ran and passed."""
    g, instance = graph
    outcome = g.batch_outcome
    assert outcome.ok, outcome.errors
    assert {"edit_regions", "reference_images", "quadruplets"} <= set(outcome.materialized)
    checks = {c.name: c for c in outcome.checks if c.asset == "quadruplets"}
    assert set(checks) >= {"quadruplet_files_intact", "quadruplets_valid", "quadruplet_task_mix"}
    for name in ("quadruplet_files_intact", "quadruplets_valid"):
        assert checks[name].blocking and checks[name].passed, name
    store = g.resources["store"]
    table = store.read_table(BATCH, "quadruplets")
    assert DOCUMENTED_COLUMNS <= set(table.columns)
    assert len(table) >= 4 and table["pair_id"].is_unique
    assert set(table["task"]) <= {"image", "video", "image_ref", "video_ref"}
    assert (table["ref_image"] != "").any(), "no sample kept a reference"
    checked = 0
    for rec in table.to_dict("records"):
        for path_col, hash_col in (
            ("src_clip", "src_clip_sha256"),
            ("tgt_clip", "tgt_clip_sha256"),
            ("ref_image", "ref_sha256"),
            ("mask_file", "mask_sha256"),
        ):
            if rec[path_col]:
                path = store.root_path / rec[path_col]
                assert shards.exists(path), rec[path_col]
                assert shards.sha256(path) == rec[hash_col], rec[path_col]
                checked += 1
        assert (rec["task"].endswith("_ref")) == bool(rec["ref_image"])
        assert 0.0 <= rec["type_confidence"] <= 1.0 and 0.0 < rec["mask_area"] <= 1.0
    assert checked >= 3 * len(table)


@pytest.mark.slow
def test_quadruplets_metadata_has_contact_sheet_and_counts(graph):
    """The quadruplets materialization shows a contact sheet (embedded image and a JPEG on disk) and
    counts that add up: rows in = accepted + dropped, per-reason counts = the quarantine table."""
    g, instance = graph
    store = g.resources["store"]
    meta = latest_metadata(instance, "quadruplets")
    table = store.read_table(BATCH, "quadruplets")
    regions = store.read_table(BATCH, "edit_regions")
    assert meta["rows_in"] == len(regions) and meta["accepted"] == len(table)
    quarantined = pd.read_parquet(store.asset_dir(BATCH, "quadruplets") / "quarantine.parquet")
    assert meta["quarantined"] == len(quarantined)
    assert meta["quarantine_by_reason"] == quarantined["reason"].value_counts().to_dict()
    assert sum(meta["task_mix"].values()) == len(table)
    assert sum(meta["edit_type_mix"].values()) == len(table)
    # contact sheet: the markdown embeds a decodable image; the path is a JPEG of the same size
    md = meta["contact_sheet"]
    assert "source | target | mask overlay | reference" in md
    payload = md.split("base64,", 1)[1].split(")", 1)[0]
    embedded = Image.open(io.BytesIO(base64.b64decode(payload)))
    on_disk = Image.open(meta["contact_sheet_path"])
    assert on_disk.format == "JPEG" and on_disk.width >= 4 * 64 and on_disk.height >= 64
    assert embedded.width > 0 and embedded.height > 0
    ref_meta = latest_metadata(instance, "reference_images")
    assert sum(ref_meta["reference_origin"].values()) == ref_meta["rows_in"] == len(regions)
    edit_meta = latest_metadata(instance, "edit_regions")
    assert sum(edit_meta["edit_types"].values()) == edit_meta["accepted"] == len(regions)


@pytest.mark.slow
def test_identical_source_and_target_is_quarantined_as_no_edit(graph):
    """A pair whose target is a copy of its source never becomes a training sample: `kiwi quarantine
    --json` lists it with reason qc_no_edit (stage edit_regions), and every other row went on."""
    g, instance = graph
    store = g.resources["store"]
    proc = kiwi("quarantine", "--batch", BATCH, "--json", home=g.home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    no_edit = [r for r in rows if r["row"] == NO_EDIT_ROW]
    assert [r["reason"] for r in no_edit] == ["qc_no_edit"], no_edit
    assert no_edit[0]["stage"] == "edit_regions" and no_edit[0]["message"]
    assert "qc_no_edit" not in {r["reason"] for r in rows if r["row"] != NO_EDIT_ROW}
    raw = store.read_table(BATCH, "raw_edit_pairs")
    assert NO_EDIT_ROW in set(raw["row"])  # ingestion accepted it: only RefVIE can tell there is no edit
    table = store.read_table(BATCH, "quadruplets")
    assert NO_EDIT_ROW not in set(table["row"])
    assert set(table["row"]) | {r["row"] for r in rows if r["reason"] == "qc_near_duplicate"} | {NO_EDIT_ROW} == set(
        raw["row"]
    )
    assert latest_metadata(instance, "edit_regions")["quarantine_by_reason"].get("qc_no_edit") == 1


@pytest.mark.slow
def test_rematerializing_refvie_is_idempotent(graph):
    """Materializing the RefVIE assets again for the same batch yields the same table hashes and DVC
    md5s, the same quarantine, and no duplicate rows."""
    g, instance = graph
    store = g.resources["store"]
    assets = ("edit_regions", "reference_images", "quadruplets")
    before = {a: latest_metadata(instance, a) for a in assets}
    quarantine_before = kiwi_quarantine_frame(store)
    [outcome] = materialize("group:refvie", [BATCH], defs=g.defs, run_config=FULL_RUN_CONFIG)
    assert outcome.ok, outcome.errors
    assert set(outcome.materialized) == set(assets)
    for a in assets:
        after = latest_metadata(instance, a)
        assert after["table_sha256"] == before[a]["table_sha256"], a
        assert after["dvc_md5"] == before[a]["dvc_md5"], a
        assert (after["accepted"], after["quarantined"]) == (before[a]["accepted"], before[a]["quarantined"]), a
        assert sha256(store.table_path(BATCH, a)) == after["table_sha256"]
    table = store.read_table(BATCH, "quadruplets")
    assert table["pair_id"].is_unique and len(table) == before["quadruplets"]["accepted"]
    pd.testing.assert_frame_equal(kiwi_quarantine_frame(store), quarantine_before)


def kiwi_quarantine_frame(store) -> pd.DataFrame:
    from kiwi_platform.lib import quarantine

    return quarantine.read_batch(store.batch_dir(BATCH)).reset_index(drop=True)
