"""What the RefVIE assets share besides Dagster: backends by name from run config, and rate-logged progress.

Why here and not in `assets/refvie.py`: the asset module only declares assets and checks; turning
a config's backend name, model path and device into a `BackendSpec` (built where each row runs),
and reporting `grounded 40/400 pairs (75 pairs/min)`, are plain functions the stages can test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kiwi_platform.engine import Progress
from kiwi_platform.refvie.region_table import BackendSpec

WEIGHT_FREE = ("diff", "opencv", "embedding", "phash")


def model_only(backend: str, device: str) -> str | None:
    """The device option goes to real-model backends only; the weight-free ones take none."""
    return None if backend in WEIGHT_FREE else device


def backend_spec(kind: str, name: str, model_path: str = "", device: str | None = None) -> BackendSpec:
    """A backend by name: `model_path` and `device` only when set (and the device only for real models)."""
    return BackendSpec.of(kind, name, model_path=model_path, device=model_only(name, device) if device else None)


def rate_progress(log: Callable[[str], None], what: str) -> Progress:
    """A `Progress` that logs `<what> done/total pairs (N pairs/min)` every 10 pairs and at the end."""
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            rate = done / max(time.perf_counter() - started, 1e-6) * 60
            log(f"{what} {done}/{total} pairs ({rate:.0f} pairs/min)")

    return report
