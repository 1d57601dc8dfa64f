"""The `kiwi` command as a user runs it: exit codes, one-line errors, printed summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KIWI = [sys.executable, "-m", "kiwi_platform"]


def kiwi(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KIWI_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "COLUMNS": "200"}
    return subprocess.run([*KIWI, *args], env=env, capture_output=True, text=True, timeout=600)


def test_ingest_demo_manifest_then_list_quarantine(kiwi_home, demo_dir):
    """`kiwi ingest` on the upstream image manifest exits 0, prints counts by reason, and
    `kiwi quarantine --json` lists all 8 rows with row number, reason, message and path."""
    proc = kiwi("ingest", str(demo_dir / "image_demo_training_set.csv"), "--batch", "img", home=kiwi_home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "missing_file" in proc.stdout and "duplicate_row" in proc.stdout
    assert "0 accepted, 8 quarantined" in proc.stdout
    listed = kiwi("quarantine", "--batch", "img", "--json", home=kiwi_home)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["row"] for r in rows] == list(range(1, 9))
    assert rows[0]["reason"] == "missing_file" and rows[0]["path"].endswith(".jpg")
    assert {r["reason"] for r in rows[1:]} == {"duplicate_row"}
    assert all(r["message"] for r in rows)


def test_unreadable_manifest_is_one_line_error(kiwi_home, tmp_path):
    """A manifest that is missing or not CSV gives `error: ...` on one line, exit 2, no traceback."""
    missing = kiwi("ingest", str(tmp_path / "nope.csv"), "--batch", "b1", home=kiwi_home)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: manifest") and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x81")
    bad = kiwi("ingest", str(binary), "--batch", "b1", home=kiwi_home)
    assert bad.returncode == 2 and "not UTF-8" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_batch_name_and_bad_selection_are_user_errors(kiwi_home, demo_dir):
    """Bad names and unparsable selections are refused with a clear message, not a traceback."""
    name = kiwi("ingest", str(demo_dir / "image_demo_training_set.csv"), "--batch", "../evil", home=kiwi_home)
    assert name.returncode == 2 and "batch name" in name.stderr
    sel = kiwi("materialize", "--select", "nonexistent_asset_xyz", home=kiwi_home)
    assert sel.returncode == 2 and "error:" in sel.stderr and "Traceback" not in sel.stderr


def test_materialize_exits_nonzero_when_a_step_fails(kiwi_home, tmp_path, small_synth):
    """`kiwi materialize` is the UI button's twin: a failing step makes it exit 1 and say why."""
    import shutil

    batch_dir = tmp_path / "batch"
    shutil.copytree(small_synth.parent, batch_dir)
    ok = kiwi("ingest", str(batch_dir / "manifest.csv"), "--batch", "s1", "--select", "raw_edit_pairs", home=kiwi_home)
    assert ok.returncode == 0, ok.stderr[-2000:]
    (batch_dir / "manifest.csv").unlink()
    failed = kiwi("materialize", "--select", "raw_edit_pairs+", "--batch", "s1", home=kiwi_home)
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "does not exist" in failed.stdout


def test_usage_mistakes_are_short_messages_not_tracebacks(kiwi_home, tmp_path):
    """`kiwi` alone shows help (exit 0); an unknown command, a missing argument or a non-number gets
    click's one-line usage error (exit 2); an --out that is a file is refused before any work."""
    bare = kiwi(home=kiwi_home)
    assert bare.returncode == 0 and "ingest" in bare.stdout
    for args in (("nosuch",), ("ingest",), ("synth", "--out", str(tmp_path / "s"), "--n", "abc")):
        proc = kiwi(*args, home=kiwi_home)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr + proc.stdout, args
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    synth = kiwi("synth", "--out", str(a_file), "--n", "1", home=kiwi_home)
    assert synth.returncode == 2 and "is not a folder" in synth.stderr


def test_read_only_commands_refuse_without_state(tmp_path):
    """Looking at state that does not exist says so instead of silently creating an empty one."""
    home = tmp_path / "nothing-here"
    for args in (("quarantine", "--batch", "b"), ("lineage", "models:/kiwi-edit@champion"), ("dvc", "status")):
        proc = kiwi(*args, home=home)
        assert proc.returncode == 2 and "no Kiwi state" in proc.stderr, args
    assert not home.exists()


TIMELINE_QUERY = """
query CliRuns {
  runsOrError(filter: {tags: [{key: "kiwi/source", value: "cli"}]}) {
    ... on Runs { results { id pipelineName status repositoryOrigin { repositoryName repositoryLocationName } } }
  }
  workspaceOrError {
    ... on Workspace {
      locationEntries { name locationOrLoadError { ... on RepositoryLocation { repositories { name pipelines { name } } } } }
    }
  }
}
"""


@pytest.mark.slow
def test_cli_run_is_a_run_of_the_code_location_the_ui_loads(kiwi_home, tmp_path, monkeypatch):
    """After `kiwi ingest`, the webserver's GraphQL (the workspace loaded as `dagster-webserver -m
    kiwi_platform.definitions` loads it) returns the run with the repository origin of a loaded
    location and a job of that location, the fields the Overview timeline groups runs by (it drops
    runs without an origin), and the run executed in the CLI's process with the owner tags."""
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster_graphql.test.utils import execute_dagster_graphql

    manifest = tmp_path / "header-only.csv"
    manifest.write_text("src_video,tgt_video,prompt\n")  # a batch with no rows: the cheapest real run
    proc = kiwi("ingest", str(manifest), "--batch", "b1", "--select", "raw_edit_pairs", home=kiwi_home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    monkeypatch.setenv("DAGSTER_HOME", str(kiwi_home / "dagster"))
    monkeypatch.setenv("KIWI_HOME", str(kiwi_home))
    instance = dg.DagsterInstance.get()
    target = ModuleTarget(
        module_name="kiwi_platform.definitions", attribute=None, working_directory=None, location_name=None
    )
    try:
        [run] = instance.get_runs()
        with WorkspaceProcessContext(instance, target) as process_context:
            result = execute_dagster_graphql(process_context.create_request_context(), TIMELINE_QUERY)
    finally:
        instance.dispose()
    assert not result.errors, result.errors
    [shown] = result.data["runsOrError"]["results"]
    assert (shown["id"], shown["status"]) == (run.run_id, "SUCCESS")
    origin = shown["repositoryOrigin"]
    assert origin is not None, "the Overview timeline drops a run without a repository origin"
    locations = {
        entry["name"]: {
            repo["name"]: {p["name"] for p in repo["pipelines"]}
            for repo in entry["locationOrLoadError"]["repositories"]
        }
        for entry in result.data["workspaceOrError"]["locationEntries"]
    }
    assert shown["pipelineName"] in locations[origin["repositoryLocationName"]][origin["repositoryName"]]
    assert run.tags["kiwi/pid"] != str(os.getpid()) and run.tags["dagster/partition"] == "b1"
    assert run.job_code_origin is not None
