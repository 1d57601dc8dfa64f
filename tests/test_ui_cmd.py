"""`kiwi ui`: one command brings up the Dagster UI and the MLflow UI, and stopping it stops both.

The asset pages link to MLflow runs; those links only open when the MLflow UI runs on the port
they name, so `kiwi ui` starts both and a user never has to start a second server by hand.
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

import pytest

APP = (
    "import typer\n"
    "from kiwi_platform.cli import ui_cmd\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "ui_cmd.register(app)\n"
    "app()\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", APP, "ui", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        start_new_session=True,  # so the test can stop leftovers by group if the command fails
    )


def test_ui_refuses_a_busy_port_with_one_line(kiwi_home: Path, tmp_path: Path) -> None:
    """A port already taken by something else is a one-line error naming the option to change, no server starts."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        log = tmp_path / "ui.log"
        proc = _start(["--port", str(port), "--mlflow-port", str(_free_port())], log)
        assert proc.wait(timeout=120) != 0
    text = log.read_text()
    assert f"port {port}" in text and "--port" in text, text
    assert "Dagster UI:" not in text


@pytest.mark.slow
def test_ui_starts_dagster_and_mlflow_and_stops_both(kiwi_home: Path, tmp_path: Path) -> None:
    """Both servers answer, both URLs are printed, and SIGINT (Ctrl-C) leaves neither port listening."""
    port, mlflow_port = _free_port(), _free_port()
    log = tmp_path / "ui.log"
    proc = _start(["--port", str(port), "--mlflow-port", str(mlflow_port)], log)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(f"http://127.0.0.1:{port}/server_info") and _answers(f"http://127.0.0.1:{mlflow_port}/health"):
                break
            time.sleep(1)
        else:
            pytest.fail(f"servers did not come up:\n{log.read_text()[-3000:]}")
        text = log.read_text()
        assert (
            f"Dagster UI:  http://127.0.0.1:{port}" in text and f"MLflow UI:   http://127.0.0.1:{mlflow_port}" in text
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        time.sleep(1)
        assert not _listening(port) and not _listening(mlflow_port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
