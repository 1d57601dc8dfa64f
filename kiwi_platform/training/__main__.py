"""`python -m kiwi_platform.training CONFIG.json MANIFEST DATA_ROOT OUTPUT_DIR`: one stage, no Dagster.

The entry point for multi-GPU / multi-node runs and for Dagster Pipes jobs (e.g. a Kubernetes pod):

    accelerate launch --num_processes 8 -m kiwi_platform.training stage2.json manifest.parquet data/ out/
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_endpoint HOST:29500 -m kiwi_platform.training ...

Prints one JSON line per step / eval / checkpoint on the main process (a Pipes wrapper or a log
collector can forward them to MLflow); user errors print `error: ...` and exit 2, SIGTERM exits 143
after its checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from pydantic import ValidationError

from kiwi_platform.training.config import TrainConfig
from kiwi_platform.training.errors import TrainingError, TrainingInterrupted
from kiwi_platform.training.loop import train

app = typer.Typer(add_completion=False)


class JsonLines:
    """Callbacks that print one JSON object per event to stdout."""

    def _out(self, event: str, **data: object) -> None:
        print(json.dumps({"event": event, **data}, default=str), flush=True)

    def on_step(self, step: int, metrics: dict) -> None:
        self._out("step", step=step, **metrics)

    def on_eval(self, step: int, metrics: dict) -> None:
        self._out("eval", step=step, **metrics)

    def on_checkpoint(self, step: int, path: Path) -> None:
        self._out("checkpoint", step=step, path=str(path))

    def on_warning(self, message: str) -> None:
        self._out("warning", message=message)


@contextlib.contextmanager
def user_errors_exit(config: Path, speak: bool = True) -> Iterator[None]:
    """Failures a user acts on become one line and an exit code: 143 stopped by a signal, 2 bad input.

    `speak=False` on the ranks other than 0 of a sharded job, so the message is printed once.
    """
    try:
        yield
    except TrainingInterrupted as exc:
        if speak:
            print(f"stopped: {exc}", file=sys.stderr)
        raise typer.Exit(143) from None
    except ValidationError as exc:
        if speak:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
            print(f"error: bad training config {config}: {problems}", file=sys.stderr)
        raise typer.Exit(2) from None
    except (TrainingError, FileNotFoundError, ValueError) as exc:
        if speak:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def main(
    config: Path = typer.Argument(..., help="TrainConfig as JSON"),
    manifest: Path = typer.Argument(..., help="training manifest (parquet)"),
    data_root: Path = typer.Argument(..., help="folder the manifest's paths are relative to"),
    output_dir: Path = typer.Argument(..., help="checkpoints/, final/ and train_result.json go here"),
    resume: bool = typer.Option(True, help="continue from the newest valid checkpoint in OUTPUT_DIR"),
    features: Path | None = typer.Option(None, help="feature cache folder (training_features); default: none"),
) -> None:
    with user_errors_exit(config):
        cfg = TrainConfig(**json.loads(config.read_text(encoding="utf-8")))
        result = train(cfg, manifest, data_root, output_dir, callbacks=JsonLines(), resume=resume, features=features)
    print(json.dumps({"event": "done", **result.to_json()}, default=str), flush=True)


if __name__ == "__main__":
    app()
