"""Same seed, same files; re-runs are idempotent; an interrupted run lists no unfinished pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.lib.files import atomic_path
from kiwi_platform.synth import generate, load_mask

TINY = dict(frames=3, height=64, width=96, image_share=0.34)


def _digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    """Two runs with the same seed write byte-identical manifests, masks, references and videos."""
    generate(tmp_path / "a", 6, seed=11, **TINY)
    generate(tmp_path / "b", 6, seed=11, **TINY)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert any(name.endswith(".mp4") for name in a)
    assert a == b


def test_different_seed_gives_different_pairs(tmp_path: Path) -> None:
    """Another seed changes the pairs (the seed is actually used)."""
    generate(tmp_path / "a", 6, seed=1, **TINY)
    generate(tmp_path / "b", 6, seed=2, **TINY)
    assert (tmp_path / "a" / "manifest.csv").read_text() != (tmp_path / "b" / "manifest.csv").read_text()
    assert not np.array_equal(load_mask(tmp_path / "a", 1, 0), load_mask(tmp_path / "b", 1, 0))


def test_rerun_into_same_folder_is_idempotent(tmp_path: Path) -> None:
    """Running again with the same arguments leaves exactly the same files and no temp files."""
    out = tmp_path / "set"
    generate(out, 6, seed=3, **TINY)
    first = _digests(out)
    generate(out, 6, seed=3, **TINY)
    assert _digests(out) == first
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_interrupted_run_leaves_no_manifest_and_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If encoding fails mid-run, no manifest is written and no half-written media or temp file remains."""
    import kiwi_platform.synth.writer as gen

    real = gen.write_mp4
    calls = {"n": 0}

    def flaky(path: Path, frames: np.ndarray, fps: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            with atomic_path(path) as tmp:
                tmp.write_bytes(b"partial")
                raise OSError("disk full")
        real(path, frames, fps)

    monkeypatch.setattr(gen, "write_mp4", flaky)
    out = tmp_path / "set"
    with pytest.raises(OSError, match="disk full"):
        generate(out, 6, seed=3, **{**TINY, "image_share": 0.0})
    assert not (out / "manifest.csv").exists() and not (out / "ground_truth.jsonl").exists()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")]  # no temp file left behind
    assert all(p.stat().st_size > 1000 for p in files if p.suffix == ".mp4")
