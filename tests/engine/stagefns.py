"""Fault-injecting row functions of the converted stages (importable by the test cluster's workers)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from kiwi_platform.ingestion.clip_table import NormalizeClip

VICTIM_MARKER = "KIWI_TEST_VICTIM_MARKER"


@dataclass(frozen=True)
class VictimNormalizeClip(NormalizeClip):
    """NormalizeClip, except that the first clip build anywhere (one marker file, created exclusively)
    writes its process id to the marker named by $KIWI_TEST_VICTIM_MARKER (read in the driver) and
    waits to be killed; every later call, the retry included, builds the clip."""

    marker: str = field(default_factory=lambda: os.environ[VICTIM_MARKER])

    def __call__(self, job: dict) -> dict:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().__call__(job)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(120)  # the test kills this process long before
        raise RuntimeError("the test did not kill the victim worker")
