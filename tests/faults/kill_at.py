"""Run the `kiwi` CLI, SIGKILLing this very process when a named function is called for the Nth time.

    python -m tests.faults.kill_at [--run-config FILE.json] MODULE:FUNCTION N KIWI_ARGS...
    python -m tests.faults.kill_at kiwi_platform.resources.dvc:DvcRepo._commit_metadata 1 ingest m.csv --batch b

The kill happens as call N starts, so calls 1..N-1 completed; nothing in production code knows
about it (the function is replaced on its module or class before the CLI runs). N = 0 never kills:
the same command, uninterrupted (a reference run, or the rerun after a kill).

`--run-config FILE.json` merges that run config into every run the command launches (as the UI's
Launchpad would send it), so `kiwi materialize` can train and evaluate with the tiny test settings
that the CLI has no flags for; values the command sets itself (e.g. ingest's manifest) are kept.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
from pathlib import Path

from kiwi_platform.cli.run_config import merged


def arm(target: str, nth: int) -> None:
    if nth <= 0:
        return
    module_name, _, attr = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), 0

    def killer(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, killer)


def inject_run_config(extra: dict) -> None:
    """Every `kiwi_platform.runner.materialize` call of this process gets `extra` merged into its run config
    (the CLI commands import `materialize` when they run, so they pick up the replacement)."""
    from kiwi_platform import runner

    original = runner.materialize

    def materialize(*args, run_config: dict | None = None, **kwargs):
        return original(*args, run_config=merged(run_config or {}, extra), **kwargs)

    runner.materialize = materialize


def main(argv: list[str]) -> None:
    if argv[:1] == ["--run-config"]:
        inject_run_config(json.loads(Path(argv[1]).read_text()))
        argv = argv[2:]
    arm(argv[0], int(argv[1]))
    sys.argv = ["kiwi", *argv[2:]]
    from kiwi_platform.cli import main as kiwi

    kiwi()


if __name__ == "__main__":
    main(sys.argv[1:])
