"""The `kiwi` console script: a warm worker runs the command when this home has one, else this process.

Kept apart from `kiwi_platform.cli` so that deciding costs nothing: importing the CLI package
imports Dagster, which is exactly what a warm worker saves (kiwi_platform/warm/).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from kiwi_platform.warm import protocol
    from kiwi_platform.warm.client import run_in_worker

    protocol.CALLER_ENV = dict(os.environ)

    try:
        code = run_in_worker(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C before the worker started the command: nothing ran
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    if code is not None:
        sys.exit(code)
    from kiwi_platform.cli import main as cli_main

    cli_main()
