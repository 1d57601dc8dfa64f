"""Where the time of an ingestion run launched from the Dagster UI goes, launch to asset step start.

Starts `dagster dev` (webserver, daemon, code server; as `kiwi ui` does) on a fresh KIWI_HOME with
a 12-pair synthetic batch registered by `kiwi ingest --select raw_edit_pairs`, then launches
`raw_edit_pairs` + `normalized_clips` for that batch through the webserver's GraphQL, exactly the
mutation the Materialize dialog sends, once per executor setting. The run's event log gives the
phases: queued -> dequeued by the daemon -> run worker process started (code location imported)
-> first asset step started -> run ended, plus how long each step process took to start.

    .venv/bin/python benchmarks/ui_launch.py [--pairs 12] [--repeat 1] [--out benchmarks/results/ui_launch.json]

Writes a JSON summary and prints a markdown table (paste it into benchmarks/measured/).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { id } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
#: The code location's executor is `in_process_executor` (definitions.py): the Materialize dialog sends
#: no execution config, so this is what a UI launch gets.
EXECUTORS = {"code location default (in-process executor)": {}}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIWI_", "DAGSTER_"))}
    env.update(KIWI_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DAGSTER_DISABLE_TELEMETRY="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        answer = json.loads(resp.read())
    if answer.get("errors"):
        raise RuntimeError(answer["errors"])
    return answer["data"]


def _wait_loaded(url: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    started, query = time.monotonic(), "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError("dagster dev exited")
        try:
            entries = _graphql(url, query)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the UI did not load")


def _phases(instance, run_id: str) -> dict:
    """Seconds from the launch (the run's ENQUEUED event, written by the launch) to each phase."""
    logs = [entry for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
    created = min(entry.timestamp for entry in logs)
    first: dict[str, float] = {}
    steps: dict[str, dict[str, float]] = {}
    for entry in logs:
        event = entry.dagster_event
        kind = event.event_type_value
        first.setdefault(kind, entry.timestamp - created)
        if event.step_key:
            steps.setdefault(event.step_key, {}).setdefault(kind, entry.timestamp - created)
    asset_step = min((s["STEP_START"] for k, s in steps.items() if "STEP_START" in s), default=None)
    ended = first.get("PIPELINE_SUCCESS", first.get("PIPELINE_FAILURE"))
    return {
        "dequeued": first.get("PIPELINE_DEQUEUED"),
        "starting": first.get("PIPELINE_STARTING"),
        "worker_started": first.get("PIPELINE_START"),
        "first_step_started": asset_step,
        "run_ended": ended,
        "success": "PIPELINE_SUCCESS" in first,
        "steps": {
            k: {"started": s.get("STEP_START"), "ended": s.get("STEP_SUCCESS", s.get("STEP_FAILURE"))}
            for k, s in steps.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ui_launch.json")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kiwi-ui-launch-"))
    home = base / "home"
    env = _env(home)
    from kiwi_platform.settings import KiwiSettings
    from kiwi_platform.synth.writer import generate

    generate(base / "synth", args.pairs, seed=0, demo_dir=KiwiSettings.from_env().demo_dir)
    manifest = base / "synth" / "manifest.csv"
    t = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "kiwi_platform", "ingest", str(manifest), "--batch", "b1", "--select", "raw_edit_pairs"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    cli_s = time.monotonic() - t
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", "import kiwi_platform.definitions"], env=env, cwd=ROOT, check=True)
    import_s = time.monotonic() - t
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(base / "dagster-dev.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "kiwi_platform.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: dict = {
        "pairs": args.pairs,
        "cores": os.cpu_count(),
        "cli_ingest_raw_s": cli_s,
        "import_definitions_s": import_s,
    }
    try:
        results["ui_load_s"] = _wait_loaded(url, proc)
        os.environ.update(DAGSTER_HOME=env["DAGSTER_HOME"], KIWI_HOME=env["KIWI_HOME"])
        import dagster as dg

        instance = dg.DagsterInstance.get()
        for name, extra in EXECUTORS.items():
            for _ in range(args.repeat):
                params = {
                    "selector": {
                        "repositoryLocationName": "kiwi_platform.definitions",
                        "repositoryName": "__repository__",
                        "pipelineName": "__ASSET_JOB",
                        "assetSelection": [{"path": ["raw_edit_pairs"]}, {"path": ["normalized_clips"]}],
                    },
                    "runConfigData": extra,
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "b1"}]},
                    "mode": "default",
                }
                answer = _graphql(url, LAUNCH, {"params": params})["launchPipelineExecution"]
                if answer["__typename"] != "LaunchRunSuccess":
                    raise RuntimeError(answer)
                run_id = answer["run"]["id"]
                while not instance.get_run_by_id(run_id).is_finished:
                    time.sleep(1)
                results.setdefault(name, []).append(_phases(instance, run_id))
        instance.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(
        f"{args.pairs} pairs, {os.cpu_count()} cores; import kiwi_platform.definitions {import_s:.1f} s; UI load {results['ui_load_s']:.1f} s"
    )
    print("| executor | dequeued | run worker started | first asset step started | run ended | success |")
    print("|---|---|---|---|---|---|")
    for name in EXECUTORS:
        runs = results[name]

        def med(key: str) -> str:
            values = [r[key] for r in runs if r[key] is not None]
            return f"{statistics.median(values):.1f} s" if values else "-"

        print(
            f"| {name} | {med('dequeued')} | {med('worker_started')} | {med('first_step_started')} | {med('run_ended')} | {all(r['success'] for r in runs)} |"
        )
    for name in EXECUTORS:
        for step, s in results[name][-1]["steps"].items():
            print(
                f"  {name[:10]} {step}: start {s['started']:.1f} s, end {s['ended']:.1f} s"
                if s["ended"]
                else f"  {step}"
            )


if __name__ == "__main__":
    main()
