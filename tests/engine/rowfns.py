"""Row functions and backends the engine tests ship to Ray workers (importable: the cluster has the repo on PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiwi_platform.refvie.backends.diff import DiffGrounder
from kiwi_platform.refvie.types import Grounding


@dataclass
class VictimGrounder:
    """DiffGrounder, except that the first call anywhere (one file, created exclusively) writes its
    process id to `marker` and waits to be killed; every later call, the retry included, just grounds."""

    marker: str
    inner: DiffGrounder = field(default_factory=DiffGrounder)
    name: str = "diff"

    def ground(self, source: np.ndarray, target: np.ndarray, prompt: str) -> Grounding:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.ground(source, target, prompt)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(120)  # the test kills this process long before
        raise RuntimeError("the test did not kill the victim worker")


@dataclass(frozen=True)
class LoadOnce:
    """A class-based row function with a model to load: `setup()` records the load in `folder`."""

    folder: str

    def setup(self) -> None:
        Path(self.folder, f"load-{os.getpid()}-{time.monotonic_ns()}").touch()

    def __call__(self, row: int) -> int:
        if row < 0:
            raise ValueError("negative")
        return row * 10


def missing_model(row: int) -> int:
    """A row function whose backend cannot load: the user's error, raised inside a worker."""
    from kiwi_platform.errors import KiwiUserError

    raise KiwiUserError("grounder backend 'qwen' needs option(s) model_path", code="bad_backend_option")


def kill_first_victim(marker: Path, killed: list[int]) -> threading.Thread:
    """A thread that SIGKILLs the process whose id appears in `marker` (the victim row function's worker)."""

    def run() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
