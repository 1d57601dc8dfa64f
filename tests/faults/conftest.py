"""Shared helpers for fault tests: the real `kiwi` CLI as separate processes on one KIWI_HOME.

Output goes to files, not pipes: a process blocked on a full pipe while it holds a lock would
stall every other process and hang the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

KIWI = [sys.executable, "-m", "kiwi_platform"]
HEADER = "src_video,tgt_video,prompt\n"
# settings a developer's shell may carry that would point the processes somewhere else
_FOREIGN = (
    "KIWI_DATA_DIR",
    "KIWI_DVC_REMOTE",
    "KIWI_MLFLOW_TRACKING_URI",
    "KIWI_MLFLOW_ARTIFACTS",
    "KIWI_LAKEFS_ENABLED",
)


@dataclass
class Finished:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"{' '.join(self.args)} -> {self.returncode}\nstdout: {self.stdout[-1500:]}\nstderr: {self.stderr[-3000:]}"
        )


def kiwi_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env.update(KIWI_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), COLUMNS="200")
    return env


def run_together(
    commands: list[tuple[str, ...]], home: Path, timeout: float = 600, argv0: list[str] = KIWI
) -> list[Finished]:
    """Start every command at once (each a `kiwi` process on `home`, or `argv0 + command`), wait for
    all, return their results in order."""
    root = home.parent / f"{home.name}-logs"
    root.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="run-", dir=root))  # one folder per call: later calls keep earlier logs
    started = []
    for i, args in enumerate(commands):
        out, err = logs / f"{i}.out", logs / f"{i}.err"
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen([*argv0, *args], env=kiwi_env(home), stdout=fo, stderr=fe)
        started.append((args, proc, out, err))
    finished = []
    for args, proc, out, err in started:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for _, other, _, _ in started:
                other.kill()
            raise
        shown = ("kiwi", *args) if argv0 is KIWI else (Path(argv0[0]).name, *argv0[1:2], "...", *args)
        finished.append(Finished(shown, code, out.read_text(), err.read_text()))
    return finished


def run_kiwi(*args: str, home: Path, timeout: float = 600) -> Finished:
    [done] = run_together([args], home, timeout=timeout)
    return done


def assert_clean(result: Finished) -> None:
    """Exit 0, or a user error: `error: ...` as the only such line, and never a traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.describe()
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.describe()


@pytest.fixture
def header_manifest(tmp_path: Path) -> Path:
    """A manifest with the header line only: a batch with no rows, the cheapest real ingest."""
    path = tmp_path / "header-only.csv"
    path.write_text(HEADER)
    return path


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory, demo_dir) -> Path:
    """3 synthetic pairs (81 frames, 64x96: the ingestion defaults accept them), made once."""
    from kiwi_platform.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 3, seed=5, frames=81, height=64, width=96, image_share=0.34, demo_dir=demo_dir)
    return out / "manifest.csv"
