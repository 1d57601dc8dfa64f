"""The `kiwi` command line: the same assets and run records as the Dagster UI, from a shell.

User errors print one line (`error: ...`) and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import sys

import typer

from kiwi_platform.cli import (
    data_cmds,
    demo_cmd,
    export_cmd,
    lineage_cmd,
    model_cmds,
    report_cmd,
    run_cmds,
    suite_cmds,
    synth_cmd,
    train_cmds,
    ui_cmd,
    worker_cmd,
)
from kiwi_platform.errors import KiwiUserError

app = typer.Typer(
    name="kiwi",
    help="Kiwi Platform: raw edit pairs -> versioned data -> trained, evaluated Kiwi-Edit models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (
    run_cmds,
    data_cmds,
    demo_cmd,
    synth_cmd,
    export_cmd,
    model_cmds,
    lineage_cmd,
    report_cmd,
    suite_cmds,
    train_cmds,
    ui_cmd,
    worker_cmd,
):
    module.register(app)


def _quiet_libraries() -> None:
    """Library chatter (beta notices, table creation, download bars) is not for users of the CLI."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for noisy in ("alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, getattr(dg, "SupersessionWarning", None)):
        if category is not None:
            warnings.filterwarnings("ignore", category=category)


def main() -> None:
    """Console-script entry point; with KIWI_PROFILE=FILE the command runs under cProfile.

    The profile is taken here, so it covers the same code in a fresh process and in a command forked
    from the warm worker: FILE gets the pstats, FILE.imports the modules the command imported itself
    (what the worker's preload, kiwi_platform/warm/preload.py, missed). docs/warm-worker.md.
    """
    import os

    where = os.environ.get("KIWI_PROFILE")
    if not where:
        _main()
        return
    import cProfile

    before = set(sys.modules)
    profile = cProfile.Profile()
    profile.enable()
    try:
        _main()
    finally:
        profile.disable()
        from kiwi_platform.lib.files import atomic_path, write_text_atomic

        write_text_atomic(f"{where}.imports", "".join(f"{name}\n" for name in sorted(set(sys.modules) - before)))
        with atomic_path(where) as tmp:
            profile.dump_stats(str(tmp))


def _main() -> None:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    _quiet_libraries()
    try:
        # without standalone mode click returns typer.Exit codes instead of exiting
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except KiwiUserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except NoArgsIsHelpError:  # `kiwi` or `kiwi model` alone: the help was printed, that is all
        sys.exit(0)
    except ClickException as exc:  # usage errors: click's own one-line message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
