"""The forked command process: become the caller's `kiwi` command, run it, exit as a fresh process would.

Everything a process takes from where it was started is taken from the caller's request: the
standard streams (its descriptors), working directory, environment, argv and umask. It gets a
process group of its own, so a signal the client forwards reaches what the command started too
(torchrun, dvc, git), as Ctrl-C reaches a terminal's foreground group. On the way out it does what
interpreter shutdown does (non-daemon threads joined, atexit handlers run, streams flushed): MLflow
flushes its async logging and Ray disconnects there.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback

from kiwi_platform.warm import protocol


def _streams() -> None:
    """New text streams over fds 0-2, with the encodings and error handlers a fresh process picks."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        old = getattr(sys, f"__{name}__") or getattr(sys, name)
        with contextlib.suppress(Exception):
            old.flush()
        stream = open(  # noqa: SIM115 - the process's own stream, closed at exit
            fd,
            mode,
            buffering=1 if mode == "w" else -1,
            encoding=getattr(old, "encoding", None),
            errors=getattr(old, "errors", None),
            closefd=False,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("message"): printed, exit 1, as the interpreter does
    return 1


def become(request: dict, fds: list[int], imported: dict | None = None) -> None:
    """Run the request's command in this (forked) process and exit with its code; never returns.

    `imported`: the variables the worker's imports set or changed (protocol.env_changes); the
    caller's environment gets them as its own imports would have set them in a fresh process."""
    code = 1
    try:
        os.setpgid(0, 0)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(int(request.get("umask", 0o022)))
        os.environ.clear()
        os.environ.update(protocol.apply_env_changes(request["env"], imported or {}))
        sys.argv = ["kiwi", *request["argv"]]
        _streams()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        from kiwi_platform.cli import main

        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            threading._shutdown()  # join non-daemon threads, as interpreter shutdown does
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
