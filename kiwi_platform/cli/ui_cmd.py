"""`kiwi ui`: the Dagster UI and the MLflow UI together, one command, stopped together.

Why both: the training and evaluation assets link to their MLflow runs and model versions
(`MlflowTracking.ui_url`, http://127.0.0.1:5000 by default). With only the Dagster UI up those
links lead nowhere; started here on the port the links name, they open. Each server runs in its
own process group, so Ctrl-C (or SIGTERM) stops both, their workers included; if one of them
exits on its own, the other is stopped too and the command exits with the first one's code.
With a tracking server (`KIWI_MLFLOW_TRACKING_URI=http://...`) there is nothing to start: its
address is printed instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import typer
from rich.console import Console

from kiwi_platform.errors import KiwiUserError

console = Console(soft_wrap=True)

# `dagster dev -m MODULE` names the code location after the module; CLI runs record that name.
LOCATION_MODULE = "kiwi_platform.definitions"
STOP_GRACE_S = 15.0


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URL we built)
            return resp.status == 200
    except OSError:
        return False


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    """A server in a process group of its own: the terminal's Ctrl-C reaches us, and we stop it whole."""
    return subprocess.Popen(cmd, cwd=cwd, env=os.environ.copy(), start_new_session=True)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


# How each server stops cleanly: `dagster dev` on SIGINT to itself (it shuts its webserver, daemon
# and code servers down in order); MLflow's uvicorn and job workers on SIGTERM to the whole group.
STOP = {"Dagster UI": (signal.SIGINT, False), "MLflow UI": (signal.SIGTERM, True)}


def stop_all(procs: dict[str, subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """Ask each server to stop, wait up to `grace` seconds, then SIGKILL whatever is left of its group."""
    for name, proc in procs.items():
        sig, whole_group = STOP.get(name, (signal.SIGTERM, True))
        if proc.poll() is not None:
            continue
        if whole_group:
            _signal_group(proc, sig)
        else:
            proc.send_signal(sig)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)  # the group's workers too, even when the leader exited
        proc.wait()


def _mlflow_target(tracking_uri: str, ui_url: str, host: str, port: int | None) -> tuple[str, int | None]:
    """(URL to print, port to serve on or None when nothing is to be started here)."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri, None
    parsed = urlparse(ui_url)
    port = port or parsed.port or 5000
    return f"http://{host}:{port}", port


def ui(
    host: str = typer.Option("127.0.0.1", help="Interface both servers bind to."),
    port: int = typer.Option(3000, help="Port of the Dagster UI."),
    mlflow_port: int = typer.Option(
        None, help="Port of the MLflow UI; default: the one the asset links use (MlflowTracking.ui_url, 5000)."
    ),
) -> None:
    """Start the Dagster UI and the MLflow UI together (Ctrl-C stops both)."""
    from kiwi_platform.env import prepare_environment
    from kiwi_platform.resources import build_resources

    settings = prepare_environment()
    tracking = build_resources(settings)["tracking"]
    mlflow_url, serve_port = _mlflow_target(tracking.tracking_uri, tracking.ui_url, host, mlflow_port)
    if not _port_free(host, port):
        raise KiwiUserError(f"port {port} on {host} is in use; pass --port to run the Dagster UI elsewhere")
    if serve_port is not None and not _port_free(host, serve_port):
        if not _answers(f"{mlflow_url}/health"):
            raise KiwiUserError(
                f"port {serve_port} on {host} is in use by something that is not MLflow; pass --mlflow-port"
            )
        console.print(f"MLflow UI already running at {mlflow_url}; using it")
        serve_port = None
    bin_dir = Path(sys.executable).parent
    procs: dict[str, subprocess.Popen] = {}
    # run from KIWI_HOME: a dagster.yaml in the checkout would otherwise look like a second instance config
    procs["Dagster UI"] = _start(
        [str(bin_dir / "dagster"), "dev", "-m", LOCATION_MODULE, "-h", host, "-p", str(port)], settings.home
    )
    if serve_port is not None:
        cmd = [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", tracking.tracking_uri]
        procs["MLflow UI"] = _start(cmd + ["--host", host, "--port", str(serve_port), "--workers", "1"], settings.home)
    console.print(f"Dagster UI:  http://{host}:{port}   (DAGSTER_HOME={settings.dagster_home})")
    console.print(f"MLflow UI:   {mlflow_url}   (tracking {tracking.tracking_uri})")
    console.print("Ctrl-C stops both.")
    _serve(procs)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # Ctrl-C and SIGTERM both stop the servers


def _serve(procs: dict[str, subprocess.Popen]) -> None:
    """Wait until Ctrl-C / SIGTERM or until one server exits; then stop them all."""
    # explicit handlers: a shell starting us in the background may have left SIGINT ignored
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while True:
            exited = {name: p.returncode for name, p in procs.items() if p.poll() is not None}
            if exited:
                name, code = next(iter(exited.items()))
                console.print(f"{name} exited with code {code}; stopping the rest")
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping the Dagster UI and the MLflow UI ...")
    finally:
        stop_all(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("stopped")
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
