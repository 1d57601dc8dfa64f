"""Data versions are reproducible: the same batch ingested into two fresh KIWI_HOMEs gives the same hashes.

Each home is a new Dagster instance, data repo and DVC remote; the batch goes through the real
ingestion assets (`kiwi_platform.runner.materialize`). Everything derived from the data must match:
the table sha256 and DVC md5 in the materialization metadata, every clip's sha256 in the table,
and every file DVC tracks. Only run ids, timings and data-repo git revisions may differ.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.env import prepare_environment
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.resources import build_resources
from kiwi_platform.runner import materialize
from tests.integration.conftest import SMALL_RUN_CONFIG, add_batch

ASSETS = ("raw_edit_pairs", "normalized_clips")
HASHED_METADATA = ("table_sha256", "dvc_md5", "dvc_files", "dvc_bytes", "accepted", "quarantined")


def ingest_in_fresh_home(home: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Point KIWI_HOME at an empty folder, ingest the batch there, and collect every derived hash."""
    monkeypatch.setenv("KIWI_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    settings = prepare_environment()
    from kiwi_platform.definitions import build_definitions

    defs, resources = build_definitions(), build_resources(settings)
    instance = dg.DagsterInstance.get()
    try:
        add_batch((defs, resources, instance), "synth", manifest)
        [outcome] = materialize("group:ingestion", ["synth"], defs=defs, run_config=SMALL_RUN_CONFIG)
        assert outcome.ok, outcome.errors
        store = resources["store"]
        found: dict = {}
        for asset in ASSETS:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
            found[asset] = {k: meta[k] for k in HASHED_METADATA}
            folder = store.asset_dir("synth", asset)
            found[asset]["files"] = {
                str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
            }
        table = store.read_table("synth", "normalized_clips")
        found["clip_sha256"] = sorted(zip(table["pair_id"], table["src_clip_sha256"], table["tgt_clip_sha256"]))
        return found
    finally:
        instance.dispose()


def test_same_batch_in_two_fresh_homes_gives_identical_versions(
    kiwi_home: Path, small_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingesting one synthetic batch (videos and images) into two fresh homes gives the same
    table_sha256 and dvc_md5 for raw_edit_pairs and normalized_clips, the same clip sha256s,
    and byte-identical files in both asset folders: a re-run is not a new data version."""
    first = ingest_in_fresh_home(kiwi_home, small_synth, monkeypatch)
    second = ingest_in_fresh_home(tmp_path / "second-home", small_synth, monkeypatch)
    assert len(first["clip_sha256"]) == 6 and first["normalized_clips"]["accepted"] == 6
    assert any(name.startswith("clips/shard-") for name in first["normalized_clips"]["files"])
    for asset in ASSETS:
        assert second[asset]["files"] == first[asset]["files"], f"{asset}: files differ between homes"
        for key in HASHED_METADATA:
            assert second[asset][key] == first[asset][key], f"{asset} {key} differs between homes"
    assert second["clip_sha256"] == first["clip_sha256"]


def test_same_data_from_two_locations_gives_identical_versions(
    kiwi_home: Path, small_synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same batch copied to two different folders (a moved dataset, a moved KIWI_HOME) and ingested
    from each gives the same table_sha256 and dvc_md5, including a quarantined row naming a missing
    file: tables hold paths relative to the batch's base, not where this machine keeps the files."""
    import shutil

    copies = []
    for name in ("first/place", "elsewhere/entirely/other"):
        folder = tmp_path / name
        shutil.copytree(small_synth.parent, folder)
        manifest = folder / "manifest.csv"
        manifest.write_text(manifest.read_text() + "a pair whose files are gone,src/gone.mp4,tgt/gone.mp4\n")
        copies.append(manifest)
    first = ingest_in_fresh_home(kiwi_home, copies[0], monkeypatch)
    second = ingest_in_fresh_home(tmp_path / "second-home", copies[1], monkeypatch)
    assert first["raw_edit_pairs"]["quarantined"] == 1 and first["raw_edit_pairs"]["accepted"] == 6
    for asset in ASSETS:
        for key in HASHED_METADATA:
            assert second[asset][key] == first[asset][key], f"{asset} {key} differs between locations"
        assert second[asset]["files"] == first[asset]["files"], f"{asset}: files differ between locations"
