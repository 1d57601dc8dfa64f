"""The summary `generate` returns (what `kiwi synth` prints) matches the files it wrote.

Generation speed at the default sizes is measured by benchmarks/synth.py, not asserted here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kiwi_platform.synth import EDIT_TYPES, generate, load_ground_truth

TINY = dict(frames=3, height=64, width=96)


def test_summary_counts_match_the_written_set(tmp_path: Path, demo_dir: Path) -> None:
    """`kiwi synth --n 14` reports 14 pairs, every edit type round-robin (3,3,2,2,2,2), the image/video split,
    and the manifest/sidecar paths exactly as written to disk."""
    summary = generate(tmp_path / "set", 14, seed=2, image_share=0.25, demo_dir=demo_dir, **TINY)
    records = load_ground_truth(tmp_path / "set")
    manifest_rows = (tmp_path / "set" / "manifest.csv").read_text().splitlines()[1:]
    assert summary.n_pairs == len(records) == len(manifest_rows) == 14
    assert summary.edit_counts == dict(Counter(r["edit_type"] for r in records))
    assert summary.edit_counts == {t: 3 if i < 2 else 2 for i, t in enumerate(EDIT_TYPES)}
    assert summary.media_counts == dict(Counter(r["media"] for r in records)) == {"image": 4, "video": 10}
    assert summary.manifest == tmp_path / "set" / "manifest.csv"
    assert summary.ground_truth == tmp_path / "set" / "ground_truth.jsonl"
