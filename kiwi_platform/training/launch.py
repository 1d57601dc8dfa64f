"""A stage on several processes of this machine: torchrun launched from the stage asset itself.

Users with an 8-GPU box set `processes: 8` in the Launchpad instead of leaving Dagster for a shell.
The asset's process stays the orchestrator (MLflow run, metrics, registration); the ranks run the
plain training entry points (`kiwi_platform.training` for ddp, `kiwi_platform.training.sharded` for
FSDP2), whose rank 0 prints one JSON line per event. Those lines are replayed into the same
callbacks an in-process run gets, so the MLflow curves and Dagster logs look the same, and the
final `done` line is the run's `TrainResult`. Stopping the Dagster run stops the ranks (SIGTERM:
they checkpoint and exit 143); a failed rank ends the step with the rank's one-line error.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from kiwi_platform.lib.files import write_bytes_atomic
from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.errors import TrainingError
from kiwi_platform.training.results import TrainResult, emit

STOP_GRACE_S = 120  # a rank finishing its step and writing its checkpoint after SIGTERM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_command(
    config_file: Path,
    manifest: Path,
    data_root: Path,
    output_dir: Path,
    *,
    processes: int,
    distributed: str,
    global_batch: int | None,
    features: Path | None,
) -> list[str]:
    """`torchrun --nproc_per_node N` on this machine (rendezvous on a free loopback port)."""
    module = "kiwi_platform.training.sharded" if distributed == "fsdp" else "kiwi_platform.training"
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)),
        *("--master_addr", "127.0.0.1", "--master_port", str(_free_port())),
        *("-m", module, str(config_file), str(manifest), str(data_root), str(output_dir)),
    ]
    if distributed == "fsdp" and global_batch:
        cmd += ["--global-batch", str(global_batch)]
    if features is not None:
        cmd += ["--features", str(features)]
    return cmd


def _replay(line: str, callbacks: Any) -> dict | None:
    """Forward one rank-0 event line to `callbacks`; the `done` event's payload is returned."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.pop("event", None)
    if kind in ("step", "eval"):
        step = int(event.pop("step"))
        emit(callbacks, f"on_{kind}", step, {k: v for k, v in event.items() if isinstance(v, (int, float))})
    elif kind == "checkpoint":
        emit(callbacks, "on_checkpoint", int(event["step"]), Path(event["path"]))
    elif kind == "warning":
        emit(callbacks, "on_warning", str(event["message"]))
    elif kind == "done":
        return event
    return None


def _result(done: dict) -> TrainResult:
    fields = {k: v for k, v in done.items() if k in TrainResult.__dataclass_fields__}
    fields["final_dir"] = Path(fields["final_dir"])
    fields["val_losses"] = [tuple(v) for v in fields.get("val_losses", [])]
    return TrainResult(**fields)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the ranks' process group (they checkpoint), then SIGKILL what is left after the grace."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def train_with_torchrun(
    config: TrainConfig,
    manifest: Path,
    data_root: Path,
    output_dir: Path,
    *,
    processes: int,
    global_batch: int | None = None,
    callbacks: Any = None,
    features: Path | None = None,
) -> TrainResult:
    """Train one stage on `processes` local ranks; events reach `callbacks` as in `train`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    config_file = output_dir / "launch-config.json"
    write_bytes_atomic(config_file, json.dumps(config.model_dump(mode="json"), indent=1).encode())
    cmd = torchrun_command(
        config_file,
        manifest,
        data_root,
        output_dir,
        processes=processes,
        distributed=config.distributed,
        global_batch=global_batch,
        features=features,
    )
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    errors: deque[str] = deque(maxlen=40)  # torchrun's own failure report is long: keep the ranks' lines apart
    said: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            errors.append(line)
            if line.startswith(("error:", "stopped:")):
                said.append(line.strip())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    done = None
    try:
        for line in proc.stdout:
            done = _replay(line, callbacks) or done
        code = proc.wait()
    except BaseException:  # the Dagster run was stopped (or the step failed): stop the ranks with it
        _stop(proc)
        raise
    reader.join(timeout=10)
    if code == 0 and done is not None:
        return _result(done)
    detail = said[-1] if said else f"torchrun exited {code}: {' | '.join(x.strip() for x in errors)[-400:]}"
    stopped = code == 143 or detail.startswith("stopped:")
    raise TrainingError(
        f"{processes} processes ({config.distributed}): {detail.removeprefix('error: ')}",
        code="interrupted" if stopped else "launch_failed",
    )
