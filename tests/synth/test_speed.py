"""Generation speed at the default sizes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiwi_platform.synth import generate


@pytest.mark.slow
def test_24_default_pairs_take_well_under_a_minute(tmp_path: Path) -> None:
    """`kiwi synth --n 24` at 81 frames, 256x448 finishes in under 60 s (about 15 s measured on 1-2 cores)."""
    started = time.perf_counter()
    summary = generate(tmp_path / "set", 24)
    assert time.perf_counter() - started < 60
    assert summary.n_pairs == 24 and sum(summary.edit_counts.values()) == 24
