"""Run the `kiwi` CLI, SIGKILLing this very process when a named function is called for the Nth time.

    python -m tests.faults.kill_at MODULE:FUNCTION N KIWI_ARGS...
    python -m tests.faults.kill_at kiwi_platform.resources.dvc:DvcRepo._commit_metadata 1 ingest m.csv --batch b

The kill happens as call N starts, so calls 1..N-1 completed; nothing in production code knows
about it (the function is replaced on its module or class before the CLI runs).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys


def arm(target: str, nth: int) -> None:
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


if __name__ == "__main__":
    arm(sys.argv[1], int(sys.argv[2]))
    sys.argv = ["kiwi", *sys.argv[3:]]
    from kiwi_platform.cli import main

    main()
