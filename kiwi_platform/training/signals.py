"""Graceful stop: SIGTERM (Kubernetes eviction, `kill`, Dagster run termination) finishes the step first."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Context manager that turns SIGTERM into a flag the loop checks between optimizer steps.

    Only the main thread can install signal handlers; elsewhere the flag simply stays unset.
    """

    SIGNALS = (signal.SIGTERM,)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
