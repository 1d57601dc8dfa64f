"""The hard synthetic set (issue 12 items 1 and the "Bad input" rule) through the real RefVIE steps.

The thresholds are the issue's targets, checked on a small version of the benchmark's hard set:
12 video pairs of 9 frames at the hard set's frame size (256x448). The size matters for the
per-type target: a regenerated target smears every edge over ~2 px, which at 96x160 is a large
share of a small object's area (added objects 0.82 there, 0.92 at 256x448; the benchmark reports
both sizes, benchmarks/measured/refvie_hard_2026-12-02b.md).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiwi_platform.lib.image_metrics import clip_mask_iou
from kiwi_platform.media.clips import read_clip
from kiwi_platform.media.normalize import normalize_media
from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.types import LOCAL_TYPES, SampleRejected
from kiwi_platform.synth import generate, load_ground_truth
from kiwi_platform.synth.difficulty import Difficulty

FRAMES, HEIGHT, WIDTH = 9, 256, 448


def _normalized(out: Path) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    result = []
    for r in load_ground_truth(out):
        clips = []
        for key in ("src", "tgt"):
            dst = out / "norm" / f"{r['pair']}_{key}.kclip"
            normalize_media(out / r[key], dst, num_frames=r["frames"], max_area=HEIGHT * WIDTH, fps=16)
            clips.append(read_clip(dst))
        masks = np.stack(
            [
                cv2.imread(str(out / r["mask_dir"] / f"{i:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127
                for i in range(r["frames"])
            ]
        )
        result.append((r, clips[0], clips[1], masks))
    return result


@pytest.fixture(scope="module")
def hard_pairs(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path):
    """12 pairs (two per edit type, videos) of the `hard` preset, normalized as ingestion does."""
    out = tmp_path_factory.mktemp("hard") / "set"
    generate(
        out,
        12,
        seed=4,
        frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        image_share=0.0,
        demo_dir=demo_dir,
        difficulty=Difficulty.preset("hard"),
    )
    return _normalized(out)


def test_photometric_only_pair_is_no_edit(tmp_path: Path, demo_dir: Path) -> None:
    """A target that differs from its source only by a global regeneration (gain, noise, lossy
    re-encode) is quarantined as qc_no_edit, not typed as a background change."""
    out = tmp_path / "photo"
    generate(
        out,
        3,
        seed=2,
        frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        image_share=0.0,
        demo_dir=demo_dir,
        difficulty=Difficulty(photometric_only=True),
    )
    for r, source, target, _ in _normalized(out):
        with pytest.raises(SampleRejected) as rejected:
            pipeline.analyse_pair(source, target, r["prompt"])
        assert rejected.value.reason == "qc_no_edit", (r["intended_edit_type"], rejected.value.reason)


@pytest.mark.slow
def test_hard_set_runs_and_is_scored(hard_pairs) -> None:
    """Every hard pair goes through the default steps without a crash: either a region with masks of
    the clip's shape and a known edit type, or a quarantine reason (never an exception)."""
    for r, source, target, gt in hard_pairs:
        try:
            region = pipeline.analyse_pair(source, target, r["prompt"])
        except SampleRejected as exc:
            assert exc.reason.startswith("qc_")
            continue
        assert region.masks.shape == gt.shape and region.edit_type in (
            *LOCAL_TYPES,
            "background_change",
            "global_style",
        )


def _scores(hard_pairs) -> tuple[dict[str, list[float]], list[bool]]:
    """Mask IoU per true edit type and type correctness per pair (a quarantined pair scores 0 / wrong)."""
    iou: dict[str, list[float]] = {}
    correct = []
    for r, source, target, gt in hard_pairs:
        try:
            region = pipeline.analyse_pair(source, target, r["prompt"])
            value, ok = clip_mask_iou(region.masks, gt), region.edit_type == r["edit_type"]
        except SampleRejected:
            value, ok = 0.0, False
        iou.setdefault(r["edit_type"], []).append(value)
        correct.append(ok)
    return iou, correct


@pytest.mark.slow
def test_hard_set_meets_the_issue_targets(hard_pairs) -> None:
    """On the hard set the default backends reach local-edit mask IoU >= 0.85, background IoU >= 0.9
    and edit-type accuracy >= 0.95 (the issue's targets, small version)."""
    iou, correct = _scores(hard_pairs)
    local = [v for t in LOCAL_TYPES for v in iou.get(t, [])]
    assert np.mean(local) >= 0.85, {t: round(float(np.mean(v)), 3) for t, v in iou.items()}
    assert np.mean(iou["background_change"]) >= 0.9
    assert np.mean(correct) >= 0.95


@pytest.mark.slow
def test_hard_set_meets_the_per_type_target(hard_pairs) -> None:
    """Every local edit type (add, remove, replace, recolor) reaches mask IoU >= 0.85 on its own on
    the hard set, so a weak type cannot hide behind strong ones in the mean."""
    iou, _ = _scores(hard_pairs)
    per_type = {t: float(np.mean(iou[t])) for t in LOCAL_TYPES}
    assert min(per_type.values()) >= 0.85, per_type


@pytest.mark.slow
def test_benchmark_reports_every_difficulty_factor(tmp_path: Path) -> None:
    """`benchmarks/refvie_pipeline.py` reports IoU, edit-type accuracy, box recall and the type
    disagreement rate for the easy set, each difficulty factor and the hard preset side by side, and
    the photometric-only bad input's qc_no_edit share, so a regression on either set shows."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench.json"
    args = ["--n", "6", "--factor-n", "6", "--frames", "5", "--height", "96", "--width", "160", "--out", str(out)]
    args += ["--hard-size", "96x160x5"]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "refvie_pipeline.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    hard = result["hard_set"]
    assert result["hard_size"] == "96x160x5"
    assert set(result["hard_targets"]) == {
        "hard_per_type_iou>=0.85",
        "hard_background_iou>=0.9",
        "hard_type_accuracy>=0.95",
        "photometric_only_all_qc_no_edit",
    }
    expected = {"easy", "motion", "camera", "regenerate", "distractors", "resize_replace", "hard", "photometric_only"}
    assert set(hard) == expected
    for name in expected - {"photometric_only"}:
        row = hard[name]
        for key in ("local_mask_iou_mean", "type_accuracy", "box_recall", "type_disagreement_rate"):
            assert 0.0 <= row[key] <= 1.0, (name, key)
        assert sum(row["outcomes"].values()) == row["pairs"] == 6
    assert 0.0 <= hard["photometric_only"]["qc_no_edit_share"] <= 1.0
    assert "photometric-only bad input ending as qc_no_edit" in proc.stdout
    assert "hard-set targets: hard_per_type_iou>=0.85:" in proc.stdout
