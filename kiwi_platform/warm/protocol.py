"""Where a KIWI_HOME's warm worker listens, and the messages on its socket (standard library only).

The client imports only this module before deciding where a command runs, so it must stay cheap:
no Dagster, no pandas, not even the settings module.

Messages are JSON objects, each prefixed by its length (4 bytes, big-endian). The request carries
the command's stdin, stdout and stderr as file descriptors (SCM_RIGHTS), so the forked command
reads and writes the caller's terminal, pipe or file directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import tempfile
from pathlib import Path

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 16 << 20  # an environment and an argv; anything bigger is not a request
# Variables the imported modules may have read at import time: the command's must equal the worker's.
# (and the thread-pool sizes the numeric libraries fixed when the worker loaded them)
ENV_PREFIXES = (
    "KIWI_",
    "DAGSTER_",
    "MLFLOW_",
    "DVC_",
    "RAY_",
    "AWS_",
    "LAKEFS_",
    "PYTHON",
    "OMP_",
    "OPENBLAS_",
    "MKL_",
    # read when the worker imported torch and the model stack (preload.TORCH_PRELOAD)
    "TORCH",
    "PYTORCH_",
    "CUDA_",
    "NVIDIA_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "DIFFUSERS_",
    "TOKENIZERS_",
    "XDG_CACHE_HOME",
)
# the environment `kiwi` was started with, before the CLI adds its defaults (set by the launcher):
# a worker started from it compares equal to the next command started from the same shell
CALLER_ENV: dict[str, str] | None = None


def kiwi_home(env: dict[str, str] | None = None, cwd: str | None = None) -> Path:
    """KIWI_HOME as the settings resolve it (the variable, else `.kiwi` in the working directory)."""
    env = os.environ if env is None else env
    home = env.get("KIWI_HOME") or os.path.join(cwd or os.getcwd(), ".kiwi")
    return Path(os.path.abspath(os.path.expanduser(home)))


def run_dir(home: Path) -> Path:
    """The worker's pid file and log live here, inside the home they serve."""
    return home / "run"


def socket_path(home: Path, create: bool = False) -> Path:
    """A short path per home (Unix socket paths stop at 107 bytes; homes can be long), in a folder
    only this user can enter (made by the worker, `create`; a client only looks)."""
    folder = Path(tempfile.gettempdir()) / f"kiwi-worker-{os.getuid()}"
    if create:
        folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{hashlib.sha256(str(home).encode()).hexdigest()[:20]}.sock"


def private(path: Path) -> bool:
    """The socket's folder is a real folder of this user's and no one else's: never talk to a socket
    another user could have put there (a shared /tmp)."""
    import stat

    try:
        st = os.lstat(path.parent)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


# read by the command itself, never at import: they may differ from the worker's
PER_COMMAND_ENV = ("KIWI_WORKER", "KIWI_PROFILE")


def relevant_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIXES) and k not in PER_COMMAND_ENV}


def env_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list]:
    """{name: [value before, value after]} of what changed between two environments (None: unset)."""
    return {k: [before.get(k), after.get(k)] for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def apply_env_changes(env: dict[str, str], changes: dict[str, list]) -> dict[str, str]:
    """`env` as the imports that made `changes` would have left it: each variable they set or unset
    changes where `env` held what the imports found (else the caller's own value stays)."""
    env = dict(env)
    for name, (old, new) in changes.items():
        if env.get(name) == old:
            if new is None:
                env.pop(name, None)
            else:
                env[name] = new
    return env


def process_facts() -> dict:
    """What a forked command inherits from the worker instead of its caller: the cgroup (memory and
    CPU limits of srun, systemd-run, a container), resource limits, CPU affinity and nice value. The
    command must match the worker in all of them (its umask is applied, not compared)."""
    import resource

    limits = {}
    for name in ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE"):
        if hasattr(resource, name):
            limits[name] = list(resource.getrlimit(getattr(resource, name)))
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            cgroup = fh.read()
    except OSError:
        cgroup = ""
    return {
        "cgroup": cgroup,
        "limits": limits,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
        "nice": os.nice(0),
    }


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    payload = _LENGTH.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], fds)
    else:
        sock.sendall(payload)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message and the descriptors sent with it; (None, []) when the peer closed the socket."""
    fds: list[int] = []
    if max_fds:
        head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, max_fds)
        if len(head) < _LENGTH.size:
            more = _exactly(sock, _LENGTH.size - len(head)) if head else None
            if more is None:
                return None, fds
            head += more
    else:
        head = _exactly(sock, _LENGTH.size)
        if head is None:
            return None, fds
    (size,) = _LENGTH.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    body = _exactly(sock, size)
    return (None if body is None else json.loads(body)), fds
