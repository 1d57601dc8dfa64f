"""`kiwi worker`: commands forked from a warm process behave as in their own process, and never get lost.

Each test drives the real `kiwi` command line in subprocesses against a worker started by
`kiwi worker start` in a temp KIWI_HOME. Slow: a worker imports for 5-15 s on 2 busy cores.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kiwi_platform.warm import protocol, server

pytestmark = pytest.mark.slow
KIWI = [sys.executable, "-m", "kiwi_platform"]


def _kiwi(env: dict, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*KIWI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _env(home: Path, demo_dir: Path) -> dict:
    return {**os.environ, "KIWI_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "KIWI_DEMO_DIR": str(demo_dir)}


def _served(home: Path) -> list[str]:
    """The commands the worker ran, from its log."""
    return re.findall(r"running (.+) as pid (\d+)", (home / "run" / "worker.log").read_text())


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path):
    """A home with a running worker (stopped after the module), and the env its commands use."""
    root = tmp_path_factory.mktemp("warm")
    env = _env(root / "home", demo_dir)
    started = _kiwi(env, "worker", "start", cwd=root)
    assert started.returncode == 0, started.stderr
    yield root, env
    pid = int((root / "home" / "run" / "worker.pid").read_text())
    stopped = _kiwi(env, "worker", "stop", cwd=root)
    assert stopped.returncode == 0 and f"worker stopped (pid {pid})" in stopped.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _pairs(root: Path, env: dict, name: str, n: int = 3) -> Path:
    done = _kiwi(env | {"KIWI_WORKER": "0"}, "synth", "--out", str(root / name), "--n", str(n), "--frames", "9",
                 "--height", "96", "--width", "160", "--seed", str(len(name)), cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (root / "short.yaml").write_text("ops:\n  raw_edit_pairs: {config: {min_frames: 9}}\n"
                                     "  normalized_clips: {config: {num_frames: 9}}\n")  # fmt: skip
    return root / name / "manifest.csv"


def test_ingest_through_the_worker_matches_its_own_process(warm, demo_dir, tmp_path):
    """`kiwi ingest` run by the worker (it says so in its log) prints the same outcome lines, exits 0 and
    writes the same clip table bytes as the same command in its own process on another home."""
    root, env = warm
    manifest = _pairs(root, env, "pairs")
    through = _kiwi(env, "ingest", str(manifest), "--batch", "b1", "--config", "short.yaml", cwd=root)
    assert through.returncode == 0, through.stderr
    assert any(cmd.startswith("ingest") for cmd, _ in _served(root / "home"))
    alone_env = _env(tmp_path / "home", demo_dir) | {"KIWI_WORKER": "0"}
    alone = _kiwi(alone_env, "ingest", str(manifest), "--batch", "b1", "--config", str(root / "short.yaml"), cwd=root)
    assert alone.returncode == 0, alone.stderr

    def outcome(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith(("batch ", "  check "))]

    assert outcome(through.stdout) == outcome(alone.stdout) and outcome(through.stdout)
    table = Path("data/batches/b1/normalized_clips/table.parquet")
    assert (root / "home" / table).read_bytes() == (tmp_path / "home" / table).read_bytes()


def test_a_profiled_command_runs_in_the_worker_and_leaves_its_profile(warm, tmp_path):
    """KIWI_PROFILE=FILE (how the fixed cost per command was measured, docs/warm-worker.md) runs the
    command in the worker as usual, and leaves a cProfile of it in FILE and the modules the command
    still had to import itself in FILE.imports."""
    import pstats

    root, env = warm
    before = len(_served(root / "home"))
    out = tmp_path / "synth.prof"
    args = ["synth", "--out", str(root / "profiled"), "--n", "1", "--frames", "9", "--height", "96", "--width", "160"]
    done = _kiwi(env | {"KIWI_PROFILE": str(out)}, *args, cwd=root)
    assert done.returncode == 0 and "warm worker" not in done.stderr, done.stderr
    assert len(_served(root / "home")) == before + 1
    stats = pstats.Stats(str(out)).stats
    assert any(file.endswith("synth_cmd.py") and name == "synth" for file, _, name in stats)
    assert (tmp_path / "synth.prof.imports").is_file()


def test_a_user_error_keeps_its_one_line_message_and_exit_code(warm):
    """A bad command through the worker fails as in its own process: same exit code, same one-line
    error on stderr, no traceback."""
    root, env = warm
    through = _kiwi(env, "ingest", str(root / "missing.csv"), "--batch", "bad", cwd=root)
    alone = _kiwi(env | {"KIWI_WORKER": "0"}, "ingest", str(root / "missing.csv"), "--batch", "bad", cwd=root)
    assert through.returncode == alone.returncode != 0
    assert through.stderr == alone.stderr and "Traceback" not in through.stderr
    assert through.stderr.startswith("error: ")


@pytest.mark.parametrize("differs", ["environment", "working directory", "nice value"])
def test_a_command_the_worker_cannot_stand_for_runs_in_its_own_process(differs, warm):
    """A command whose KIWI_* settings, working directory (the code location resolved relative paths
    against the worker's) or process limits (here its nice value) differ from the worker's is refused
    with a one-line note and runs in its own process, with its own settings."""
    root, env = warm
    before = len(_served(root / "home"))
    cwd, preexec = root, None
    if differs == "environment":
        env = env | {"KIWI_TEAM_NOTE": "another shell"}
    elif differs == "working directory":
        cwd = root / "elsewhere"
        cwd.mkdir(exist_ok=True)
    else:
        preexec = lambda: os.nice(3)  # noqa: E731
    args = [*KIWI, "synth", "--out", str(root / f"other-{differs[:4]}"), "--n", "1"]
    other = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, preexec_fn=preexec)
    assert other.returncode == 0, other.stderr
    assert "running without the warm worker: " in other.stderr
    assert len(_served(root / "home")) == before


@pytest.mark.parametrize("how", ["ctrl-c", "client killed"])
def test_stopping_the_client_stops_its_command(how, warm):
    """Ctrl-C on a command run by the worker reaches it (exit 130, as in its own process), and a client
    killed with SIGKILL takes its command down too: no command outlives the `kiwi` that asked for it."""
    root, env = warm
    before = len(_served(root / "home"))
    client = subprocess.Popen([*KIWI, "synth", "--out", str(root / f"big-{how[:4]}"), "--n", "5000"], env=env,
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(lambda: len(_served(root / "home")) > before)
    pid = int(_served(root / "home")[before][1])
    time.sleep(1.0)
    client.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    code = client.wait(timeout=60)
    if how == "ctrl-c":
        assert code == 130, client.stderr.read()
    _wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 30)


def test_a_killed_worker_leaves_commands_running_in_their_own_process(tmp_path, demo_dir):
    """SIGKILL of the worker leaves its socket behind: the next command runs in its own process without
    a word about it, and `kiwi worker start` starts a new one over the stale socket."""
    env = _env(tmp_path / "home", demo_dir)
    assert _kiwi(env, "worker", "start", cwd=tmp_path).returncode == 0
    pid = int((tmp_path / "home" / "run" / "worker.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    assert protocol.socket_path(tmp_path / "home").exists()
    done = _kiwi(env, "synth", "--out", str(tmp_path / "pairs"), "--n", "1", cwd=tmp_path)
    assert done.returncode == 0 and "warm worker" not in done.stderr
    assert _kiwi(env, "worker", "status", cwd=tmp_path).returncode == 1
    try:
        assert _kiwi(env, "worker", "start", cwd=tmp_path).returncode == 0
        assert _kiwi(env, "worker", "status", cwd=tmp_path).returncode == 0
    finally:
        _kiwi(env, "worker", "stop", cwd=tmp_path)


def test_changed_code_is_refused_until_the_worker_restarts():
    """A worker whose imported files changed on disk since it started would run old code: it refuses
    (the command then runs in its own process) and says how to fix it."""
    request = {
        "env": dict(os.environ),
        "python": sys.executable,
        "cwd": os.getcwd(),
        "process": protocol.process_facts(),
    }
    fingerprint = [list(f) for f in server.code_fingerprint()]
    assert server._refusal(request, dict(os.environ), [tuple(f) for f in fingerprint]) == ""
    fingerprint[0][1] += 1  # one module's mtime moved
    assert "code changed" in server._refusal(request, dict(os.environ), [tuple(f) for f in fingerprint])
