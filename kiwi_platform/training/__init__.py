"""Curriculum training for Kiwi-Edit as a plain library: the Dagster assets call `train` with callbacks.

No Dagster or MLflow imports here (the assets log through `TrainCallbacks`).
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
from kiwi_platform.training.loop import TrainCallbacks, TrainResult, train

__all__ = [
    "DataHashMismatch", "EmptyManifestError", "MissingCheckpointError", "Resolution", "ResumeMismatch",
    "TrainCallbacks", "TrainConfig", "TrainResult", "TrainingDiverged", "TrainingError", "TrainingInterrupted",
    "TrainingOOM", "train",
]  # fmt: skip
