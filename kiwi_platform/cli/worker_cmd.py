"""`kiwi worker start|stop|status`: this home's warm worker (kiwi_platform/warm/, docs/warm-worker.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import typer

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.warm import protocol

STOP_TIMEOUT_S = 15.0  # the worker checks for SIGTERM every second
READY_TIMEOUT_S = 180.0  # the imports take 10-30 s on 2 busy cores; minutes means something is wrong

worker_app = typer.Typer(help="A warm worker for this KIWI_HOME: commands start in a fraction of a second.")


def _running() -> int | None:
    """The pid of this home's worker if one answers on its socket, else None."""
    home = protocol.kiwi_home()
    pid_file = protocol.run_dir(home) / "worker.pid"
    with contextlib.suppress(OSError, ValueError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(protocol.socket_path(home)))
        return int(pid_file.read_text())
    return None


@worker_app.command("start")
def start(
    idle_minutes: float = typer.Option(60.0, "--idle-minutes", help="Leave after this long without a command."),
    torch: bool = typer.Option(
        True,
        "--torch/--no-torch",
        help="Also import torch and the model stack (~700 MiB more in the worker, 5-15 s off each feature or "
        "training command); --no-torch leaves those commands to import it themselves.",
    ),
) -> None:
    """Start the worker (imports once; each later `kiwi` command is a fork of it)."""
    if (pid := _running()) is not None:
        typer.echo(f"worker already running (pid {pid})")
        return
    home = protocol.kiwi_home()
    run = protocol.run_dir(home)
    run.mkdir(parents=True, exist_ok=True)
    env = protocol.CALLER_ENV if protocol.CALLER_ENV is not None else dict(os.environ)
    began = time.monotonic()
    with open(run / "worker.log", "ab") as log, open(os.devnull, "rb") as null:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiwi_platform.warm", str(home), str(idle_minutes * 60), "1" if torch else "0"],
            env=env,
            stdin=null,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped by the terminal's Ctrl-C, outlives this command
        )
    while _running() != proc.pid:
        if proc.poll() is not None:
            if (other := _running()) is not None:  # started at the same time by someone else
                typer.echo(f"worker already running (pid {other})")
                return
            tail = (run / "worker.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise KiwiUserError(f"the worker exited ({proc.returncode}) while starting: {' '.join(tail)}")
        if time.monotonic() - began > READY_TIMEOUT_S:
            proc.kill()
            raise KiwiUserError(f"the worker was not ready after {READY_TIMEOUT_S:g} s; see {run / 'worker.log'}")
        time.sleep(0.1)
    typer.echo(f"worker ready in {time.monotonic() - began:.1f} s (pid {proc.pid}); log: {run / 'worker.log'}")


@worker_app.command("stop")
def stop() -> None:
    """Stop the worker (commands it is running go on to their end)."""
    pid = _running()
    if pid is None:
        typer.echo("no worker running")
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid):
        if time.monotonic() > end:
            raise KiwiUserError(f"the worker (pid {pid}) did not stop within {STOP_TIMEOUT_S:g} s")
        time.sleep(0.1)
    typer.echo(f"worker stopped (pid {pid})")


def _alive(pid: int) -> bool:
    """Running: a zombie (stopped, its parent has not reaped it yet) is not."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@worker_app.command("status")
def status() -> None:
    """Say whether this home has a worker (exit 1 when it has none)."""
    pid = _running()
    if pid is None:
        typer.echo("no worker running")
        raise typer.Exit(1)
    typer.echo(f"worker running (pid {pid}) for {protocol.kiwi_home()}")


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")
