"""Curriculum training for Kiwi-Edit as a plain library: the Dagster assets call `train` with callbacks.

No Dagster or MLflow imports here (the assets log through `TrainCallbacks`). Entry points:

- `train(config, manifest_path, data_root, output_dir, *, callbacks=None, resume=True) -> TrainResult`
- `python -m kiwi_platform.training CONFIG.json MANIFEST DATA_ROOT OUTPUT_DIR` (torchrun / accelerate
  launch / Dagster Pipes pods), JSON lines on stdout.
- `kiwi_platform.training.fixtures.make_training_manifest` builds a real synthetic manifest.

Output folder: `checkpoints/step-N/` (resumable state, see `checkpoint.py`), `checkpoints/latest`,
`final/` (the trained pipeline in the released layout, loadable with KiwiEditPipeline.from_pretrained)
and `train_result.json`.
"""

from kiwi_platform.training.config import Resolution, TrainConfig
from kiwi_platform.training.errors import (
    DataHashMismatch,
    EmptyManifestError,
    MissingCheckpointError,
    ResumeMismatch,
    TrainingDiverged,
    TrainingError,
    TrainingInterrupted,
    TrainingOOM,
)
from kiwi_platform.training.results import TrainCallbacks, TrainResult

__all__ = [
    "DataHashMismatch",
    "EmptyManifestError",
    "MissingCheckpointError",
    "Resolution",
    "ResumeMismatch",
    "TrainCallbacks",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingError",
    "TrainingInterrupted",
    "TrainingOOM",
    "train",
]


def __getattr__(name: str):
    """`train` is imported on first use: the loop pulls in torch (1-2 s), which every module of this
    package would otherwise cost (the Dagster code location imports several to declare assets)."""
    if name == "train":
        from kiwi_platform.training.loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
