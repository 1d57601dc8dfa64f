"""The warm worker process: import once, then fork one copy per `kiwi` command (`python -m kiwi_platform.warm`).

One thread, no work of its own: between commands it only waits in `accept`, so a fork never copies
a lock some other thread held. Per connection it forks a session process, which checks the
request, forks the command (`command.become`) once the client confirms it is still there, and
reports the command's exit status; the session stops the command's process group (SIGTERM, then
SIGKILL) if the client goes away, as a command killed with its terminal would stop. Sessions are
reaped by the kernel (SIGCHLD ignored in the worker). One worker per home (a lock held for its
life); it leaves after `idle_s` without a command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

from kiwi_platform.warm import protocol
from kiwi_platform.warm.command import become
from kiwi_platform.warm.preload import import_all

CODE_ROOTS = ("kiwi_platform", "assets", "model")  # top-level packages whose files must not change
REPO = Path(__file__).resolve().parents[2]
HANDSHAKE_S = 10.0  # a request or the client's go-ahead slower than this: the session gives up
STOP_GRACE_S = 10.0  # a command asked to stop (its client went away) gets this long before SIGKILL


def code_fingerprint() -> list[tuple[str, int, int]]:
    """(file, mtime, size) of every Python file of the code roots: a changed or added file means the
    worker would run old code (or miss a new asset module), so it refuses until restarted."""
    files = []
    for root in CODE_ROOTS:
        for dirpath, dirnames, filenames in os.walk(REPO / root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    with contextlib.suppress(OSError):
                        st = os.stat(os.path.join(dirpath, name))
                        files.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
    return sorted(files)


def _refusal(request: dict, env: dict[str, str], fingerprint: list) -> str:
    """Why this worker must not run the request ('' = it may)."""
    theirs, ours = protocol.relevant_env(request.get("env", {})), protocol.relevant_env(env)
    changed = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if changed:
        return f"the environment differs from the worker's in {', '.join(changed[:3])}"
    if request.get("python") != sys.executable:
        return f"the worker runs {sys.executable}"
    if request.get("cwd") != os.getcwd():  # the code location resolved relative settings against it
        return f"the worker runs in {os.getcwd()}"
    mine = protocol.process_facts()
    differ = sorted(k for k, v in mine.items() if request.get("process", {}).get(k) != v)
    if differ:
        return f"the process {' and '.join(differ)} differ from the worker's"
    if [tuple(f) for f in code_fingerprint()] != fingerprint:
        return "the code changed since the worker started (kiwi worker stop, then start)"
    return ""


def _stop(pid: int) -> None:
    """Stop the command's process group: SIGTERM, then SIGKILL after the grace period."""
    for signum, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)
        end = time.monotonic() + (grace or STOP_GRACE_S)
        while time.monotonic() < end:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.1)


def _client_gone(conn: socket.socket) -> bool:
    readable, _, _ = select.select([conn], [], [], 0.2)
    if not readable:
        return False
    try:
        return not conn.recv(1, socket.MSG_PEEK)
    except OSError:  # ECONNRESET: it closed with our reply unread
        return True


def _session(conn: socket.socket, env: dict[str, str], imported: dict, fingerprint: list, log) -> None:
    """In the forked session process: check the request, fork the command, report its exit.

    `imported`: the variables the worker's imports set (protocol.env_changes), which the command's
    environment gets as a fresh process's imports would have set them."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this process waits for its command
    conn.settimeout(HANDSHAKE_S)
    request, fds = protocol.receive(conn, max_fds=3)
    try:
        if request is None or len(fds) != 3:
            return
        refusal = _refusal(request, env, fingerprint)
        if refusal:
            protocol.send(conn, {"refuse": refusal})
            log(f"refused {request.get('argv', [])[:2]}: {refusal}")
            return
        protocol.send(conn, {"ready": True})
        go, _ = protocol.receive(conn)  # the client may have given up waiting: then nothing runs
        if not go or not go.get("go"):
            return
        pid = os.fork()
        if pid == 0:
            conn.close()
            become(request, fds, imported)
        with contextlib.suppress(OSError):  # the child does the same: whichever runs first, no race
            os.setpgid(pid, pid)
    finally:
        for fd in fds:
            os.close(fd)
    conn.settimeout(None)
    status = None
    try:
        protocol.send(conn, {"pid": pid})
        log(f"running {' '.join(request['argv'][:3])} as pid {pid}")
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if _client_gone(conn):
                log(f"pid {pid}: its client went away, stopping it")
                _stop(pid)
                return
        code = os.waitstatus_to_exitcode(status)
        protocol.send(conn, {"exit": code})
        log(f"pid {pid} exited {code}")
    except BaseException:
        if status is None:  # the command has not ended: nobody could report it, so it stops
            _stop(pid)
        raise


def serve(home: Path, idle_s: float, torch: bool = True) -> None:
    """Import (preload.py; the torch stack unless `torch` is False), then fork one session per connection."""
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    run = protocol.run_dir(home)
    run.mkdir(parents=True, exist_ok=True)
    lock = open(run / "worker.lock", "a")  # noqa: SIM115 - held for the worker's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another worker serves {home}")
    env = dict(os.environ)  # what the worker was started with: what a command's environment must match
    fingerprint = code_fingerprint()  # before importing: a file changed meanwhile is a change too
    import_all(log, torch=torch)
    imported = protocol.env_changes(env, dict(os.environ))  # e.g. TORCHINDUCTOR_CACHE_DIR, set by torch
    path = protocol.socket_path(home, create=True)
    if not protocol.private(path):
        sys.exit(f"{path.parent} is not private to this user: not listening there")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a socket left by a worker that was killed (the lock says none is alive)
    server.bind(str(path))
    inode = os.stat(path).st_ino
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
                lock.close()
                try:
                    _session(conn, env, imported, fingerprint, log)
                except BaseException as exc:  # noqa: BLE001 - a session's failure is logged, never the worker's
                    log(f"session failed: {type(exc).__name__}: {exc}")
                finally:
                    os._exit(0)
            conn.close()
        log("stopped (SIGTERM)")
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:  # only the socket this worker bound
                path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (run / "worker.pid").unlink()
