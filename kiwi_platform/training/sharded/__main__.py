"""`torchrun --nproc_per_node N -m kiwi_platform.training.sharded CONFIG.json MANIFEST DATA_ROOT OUT`.

The FSDP2 stage without Dagster (the Pipes twin is `kiwi_platform.pipes.train_pod`). Rank 0 prints
one JSON line per step / eval / checkpoint; a user error prints `error: ...` once and every rank
exits 2; SIGTERM exits 143 after its checkpoint. A rank that dies takes the job down: its peers
fail their next collective (or time out after KIWI_DIST_TIMEOUT_S) and torchrun exits non-zero.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

# the same event lines and exit codes as one-process training
from kiwi_platform.training.__main__ import JsonLines, user_errors_exit

app = typer.Typer(add_completion=False)


@app.command()
def main(
    config: Path = typer.Argument(..., help="TrainConfig as JSON"),
    manifest: Path = typer.Argument(..., help="training manifest (parquet)"),
    data_root: Path = typer.Argument(..., help="folder the manifest's paths are relative to"),
    output_dir: Path = typer.Argument(..., help="checkpoints/, final/ and train_result.json go here"),
    global_batch: int = typer.Option(0, help="samples per micro-batch over all processes; 0 = checkpoint's or world"),
    resume: bool = typer.Option(True, help="continue from the newest valid checkpoint in OUTPUT_DIR"),
    features: Path | None = typer.Option(None, help="feature cache folder (training_features); default: none"),
) -> None:
    from kiwi_platform.training.config import TrainConfig
    from kiwi_platform.training.sharded import train_sharded

    main_rank = os.environ.get("RANK", "0") == "0"
    with user_errors_exit(config, speak=main_rank):
        cfg = TrainConfig(**json.loads(config.read_text(encoding="utf-8")))
        result = train_sharded(
            cfg,
            manifest,
            data_root,
            output_dir,
            callbacks=JsonLines() if main_rank else None,
            resume=resume,
            global_batch=global_batch or None,
            features=features,
        )
    if main_rank:
        print(json.dumps({"event": "done", **result.to_json()}, default=str), flush=True)


if __name__ == "__main__":
    app()
