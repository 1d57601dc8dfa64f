"""Training failures a user can act on: each is one clear line naming the file, step or knob."""

from __future__ import annotations

from kiwi_platform.errors import KiwiUserError


class TrainingError(KiwiUserError):
    """Base class: the CLI and the Dagster assets print these as one line, no traceback."""

    def __init__(self, message: str, *, code: str = "training_error") -> None:
        super().__init__(message, code=code)


class EmptyManifestError(TrainingError):
    """The manifest has no rows, or the configured task mix has no samples to draw from."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="empty_manifest")


class DataHashMismatch(TrainingError):
    """A media file changed after the manifest was written (its sha256 no longer matches)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="hash_mismatch")


class MissingCheckpointError(TrainingError):
    """The previous stage's checkpoint (or the model folder) is not there."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="missing_checkpoint")


class ResumeMismatch(TrainingError):
    """The output folder holds checkpoints from another config or manifest."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="resume_mismatch")


class TrainingDiverged(TrainingError):
    """The loss became NaN/inf; the last good checkpoint is kept untouched."""

    def __init__(self, step: int, loss: float, last_checkpoint: str | None) -> None:
        kept = f"last good checkpoint kept: {last_checkpoint}" if last_checkpoint else "no checkpoint was written yet"
        super().__init__(
            f"training diverged at step {step}: loss is {loss} ({kept}); lower lr, raise warmup_steps "
            "or use mixed_precision=bf16 instead of fp16",
            code="diverged",
        )
        self.step = step
        self.loss = loss
        self.last_checkpoint = last_checkpoint


class TrainingOOM(TrainingError):
    """The accelerator ran out of memory; the message names the knobs that reduce it."""

    def __init__(self, step: int, height: int, width: int, frames: int, detail: str) -> None:
        super().__init__(
            f"out of GPU memory at step {step} ({frames} frames at {height}x{width}): lower the resolution "
            "schedule or frames, set gradient_checkpointing=true, use mixed_precision=bf16, enable CPU offload "
            f"(distributed=fsdp; see kiwi train plan), or use more GPUs ({detail.splitlines()[0][:200]})",
            code="out_of_memory",
        )
        self.step = step


class TrainingInterrupted(TrainingError):
    """SIGTERM/SIGINT arrived: the current step finished, a checkpoint was saved; run again to resume."""

    def __init__(self, step: int, checkpoint: str | None) -> None:
        super().__init__(
            f"training stopped by a signal after step {step}; checkpoint saved at {checkpoint}; "
            "run the same command again to resume",
            code="interrupted",
        )
        self.step = step
        self.checkpoint = checkpoint
