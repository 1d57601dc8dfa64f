"""What a training run reports: the callbacks callers may implement and the result of a finished stage.

Kept apart from the loop so callers (assets, CLI, benchmarks) depend on these small types only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol


class TrainCallbacks(Protocol):
    """What a caller (Dagster asset, CLI, benchmark) may implement; every method is optional."""

    def on_step(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_eval(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, step: int, path: Path) -> None: ...
    def on_warning(self, message: str) -> None: ...


@dataclass
class TrainResult:
    """What a finished stage produced; `final_dir` is a pipeline folder in the released layout."""

    final_dir: Path
    steps: int
    losses: list[float]
    val_losses: list[tuple[int, float]]
    trainable: list[str]
    trainable_params: int
    samples_seen: int
    seconds: float
    resumed_from: str | None
    config_hash: str
    manifest_sha256: str
    last_checkpoint: str | None
    trainable_sha256: str = ""  # this process's trainable weights (replicas must agree)
    skipped_checkpoints: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["final_dir"] = str(self.final_dir)
        data["val_losses"] = [list(v) for v in self.val_losses]
        return data


def emit(callbacks: Any, name: str, *args: Any) -> None:
    """Call `callbacks.<name>(*args)` if the caller implemented it (every callback is optional)."""
    fn = getattr(callbacks, name, None) if callbacks is not None else None
    if fn is not None:
        fn(*args)
