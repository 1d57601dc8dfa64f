"""The warm worker process: import once, then fork one copy per `kiwi` command (`python -m kiwi_platform.warm`).

One thread, no work of its own: between commands it only waits in `accept`, so a fork never copies
a lock some other thread held. Per connection it forks a session process, which forks the command
and reports its exit status to the client; the session also stops the command (SIGTERM) if the
client goes away, as a command killed with its terminal would stop. Sessions are reaped by the
kernel (SIGCHLD ignored in the worker). The worker leaves after `idle_s` without a command.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

from kiwi_platform.warm import protocol

# what a kiwi command imports before doing anything (~7-9 s in a fresh process on 2 cores)
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "dagster",
    "great_expectations",
    "dvc.repo",
    "cv2",
    "av",
    "PIL.Image",
    "kiwi_platform.cli",
    "kiwi_platform.definitions",
    # imported on the way by a run: instance storage, the selection parser, DVC's git backends
    "sqlalchemy",
    "alembic.command",
    "alembic.config",
    "dagster._core.definitions.antlr_asset_selection.antlr_asset_selection",
    "pygments.lexers",
    "pygit2",
    "dulwich.repo",
    "scmrepo.git",
    "dvc.repo.add",
    "dvc_render",
    "structlog",
    "upath",
)
CODE_ROOTS = ("kiwi_platform", "assets", "model")  # top-level packages whose files must not change
REPO = Path(__file__).resolve().parents[2]


def code_fingerprint() -> list[tuple[str, int, int]]:
    """(file, mtime, size) of every imported module of this repository: a changed file means the
    worker would run old code, so it refuses until restarted."""
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path and Path(path).is_relative_to(REPO) and Path(path).relative_to(REPO).parts[0] in CODE_ROOTS:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                files.append((path, st.st_mtime_ns, st.st_size))
    return sorted(files)


def _refusal(request: dict, env: dict[str, str], fingerprint: list) -> str:
    """Why this worker must not run the request ('' = it may)."""
    theirs, ours = protocol.relevant_env(request.get("env", {})), protocol.relevant_env(env)
    changed = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if changed:
        return f"the environment differs from the worker's in {', '.join(changed[:3])}"
    if request.get("python") != sys.executable:
        return f"the worker runs {sys.executable}"
    if [tuple(f) for f in code_fingerprint()] != fingerprint:
        return "the code changed since the worker started (kiwi worker restart)"
    return ""


def _run_command(request: dict, fds: list[int]) -> None:
    """In the forked command process: become the caller's command, then exit with its code."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["kiwi", *request["argv"]]
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams, never closed
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 1
    try:
        from kiwi_platform.cli import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _session(conn: socket.socket, env: dict[str, str], fingerprint: list, log) -> None:
    """In the forked session process: check the request, fork the command, report its exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this process waits for its command
    request, fds = protocol.receive(conn, max_fds=3)
    if request is None or len(fds) != 3:
        return
    refusal = _refusal(request, env, fingerprint)
    if refusal:
        protocol.send(conn, {"refuse": refusal})
        log(f"refused {request.get('argv', [])[:2]}: {refusal}")
        return
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_command(request, fds)
    for fd in fds:
        os.close(fd)
    protocol.send(conn, {"pid": pid})
    log(f"running {' '.join(request['argv'][:3])} as pid {pid}")
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        readable, _, _ = select.select([conn], [], [], 0.2)
        if readable and not conn.recv(1, socket.MSG_PEEK):  # the client is gone: stop its command
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            log(f"pid {pid} stopped: its client went away")
            return
    code = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(OSError):
        protocol.send(conn, {"exit": code})
    log(f"pid {pid} exited {code}")


def serve(home: Path, idle_s: float) -> None:
    started = time.monotonic()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a library moved a module: that command pays the import, nothing more
            print(f"not preloaded: {name} ({exc})", flush=True)
    env, fingerprint = dict(os.environ), code_fingerprint()
    path = protocol.socket_path(home, create=True)
    if not protocol.private(path):
        sys.exit(f"{path.parent} is not private to this user: not listening there")
    run = protocol.run_dir(home)
    run.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a worker that was killed
    server.bind(str(path))
    server.listen(64)
    server.settimeout(1.0)  # wake up every second to see whether to leave
    (run / "worker.pid").write_text(f"{os.getpid()}\n")
    stopping: list[int] = []
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sessions are reaped by the kernel
    # a flag, not an exception: SIGTERM may land inside a fork handler, where an exception is ignored
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    log(f"ready in {time.monotonic() - started:.1f} s: {home} on {path} (pid {os.getpid()})")
    last = time.monotonic()
    try:
        while not stopping:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - last > idle_s:
                    log(f"no command for {idle_s:g} s: leaving")
                    return
                continue
            last = time.monotonic()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                server.close()
                try:
                    conn.settimeout(None)
                    _session(conn, env, fingerprint, log)
                finally:
                    os._exit(0)
            conn.close()
        log("stopped (SIGTERM)")
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (run / "worker.pid").unlink()
