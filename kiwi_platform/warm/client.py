"""The `kiwi` side: hand the command to this home's warm worker, or say it must run here (None).

Runs before anything heavy is imported, so when no worker is there a command costs one `stat`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

from kiwi_platform.warm import protocol

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_in_worker(argv: list[str]) -> int | None:
    """The command's exit code when the worker ran it; None when it must run in this process."""
    if os.environ.get("KIWI_WORKER", "1") == "0" or (argv[:1] == ["worker"]):
        return None
    path = protocol.socket_path(protocol.kiwi_home())
    if not path.exists() or not protocol.private(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:  # a worker that was killed left its socket: run here
        sock.close()
        return None
    with sock, contextlib.ExitStack() as stack:
        fds = []
        for fd in (0, 1, 2):  # a closed stdin (some CI runners) becomes /dev/null for the command
            try:
                os.fstat(fd)
                fds.append(fd)
            except OSError:
                fds.append(stack.enter_context(open(os.devnull, "rb")).fileno())
        request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "python": sys.executable}
        try:
            protocol.send(sock, request, fds)
            reply, _ = protocol.receive(sock)
        except OSError:
            return None
        if reply is None:
            return None
        if "refuse" in reply:
            print(f"kiwi: running without the warm worker: {reply['refuse']}", file=sys.stderr)
            return None
        pid = int(reply["pid"])

        def forward(signum, _frame) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        for signum in FORWARDED:
            signal.signal(signum, forward)
        reply, _ = protocol.receive(sock)
    if reply is None:
        print("kiwi: the warm worker went away while running the command", file=sys.stderr)
        return 1
    code = int(reply["exit"])
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + N
