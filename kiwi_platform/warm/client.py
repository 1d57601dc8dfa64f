"""The `kiwi` side: hand the command to this home's warm worker, or say it must run here (None).

Runs before anything heavy is imported, so when no worker is there a command costs one `stat`.
A command runs exactly once: the worker forks it only after this side's go-ahead, which is sent
only after the worker said it would take it (in time); anything else means running here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from kiwi_platform.warm import protocol

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
ANSWER_S = 10.0  # a worker that does not answer within this (stopped, stuck) is passed by


def _descriptors(stack: contextlib.ExitStack) -> list[int]:
    """Our stdin, stdout, stderr; a closed one (some CI runners close stdin) becomes /dev/null."""
    fds = []
    for fd, mode in ((0, "rb"), (1, "wb"), (2, "wb")):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(stack.enter_context(open(os.devnull, mode)).fileno())
    return fds


def _exit_as(code: int) -> int:
    """The command's exit; killed by a signal, this process dies of the same signal (callers see -N)."""
    if code < 0:
        sys.stdout.flush()
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # not reached for signals that terminate
    return code


def run_in_worker(argv: list[str]) -> int | None:
    """The command's exit code when the worker ran it; None when it must run in this process."""
    if os.environ.get("KIWI_WORKER", "1") == "0" or argv[:1] == ["worker"]:
        return None
    path = protocol.socket_path(protocol.kiwi_home())
    if not path.exists() or not protocol.private(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_S)
    try:
        sock.connect(str(path))
    except OSError:  # a worker that was killed left its socket: run here
        sock.close()
        return None
    pid: list[int] = []
    pending: list[int] = []

    def forward(signum, _frame) -> None:
        if not pid:
            pending.append(signum)  # before the command exists: sent as soon as it does
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid[0], signum)

    with sock, contextlib.ExitStack() as stack:
        umask = os.umask(0o022)
        os.umask(umask)
        request = {
            "argv": argv,
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "python": sys.executable,
            "umask": umask,
            "process": protocol.process_facts(),
        }
        try:
            protocol.send(sock, request, _descriptors(stack))
            reply, _ = protocol.receive(sock)
            if reply is None or not reply.get("ready"):
                if reply and "refuse" in reply:
                    print(f"kiwi: running without the warm worker: {reply['refuse']}", file=sys.stderr)
                return None
            for signum in FORWARDED:
                signal.signal(signum, forward)
            protocol.send(sock, {"go": True})
        except OSError:  # no answer in time, or the worker went away before the go-ahead
            return None
        sock.settimeout(None)
        reply, _ = protocol.receive(sock)
        if reply is None or "pid" not in reply:
            print("kiwi: the warm worker went away before starting the command", file=sys.stderr)
            return 1
        pid.append(int(reply["pid"]))
        for signum in pending:
            forward(signum, None)
        reply, _ = protocol.receive(sock)
    if reply is None:
        print("kiwi: the warm worker went away while running the command", file=sys.stderr)
        return 1
    return _exit_as(int(reply["exit"]))
