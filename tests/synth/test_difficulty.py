"""`kiwi synth` difficulty factors (issue 12 item 1): the hard set is honest and its truth exact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from kiwi_platform.cli.synth_cmd import register
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.synth import generate, load_ground_truth
from kiwi_platform.synth.difficulty import Difficulty
from kiwi_platform.synth.media import read_frames

TINY = dict(frames=7, height=96, width=160, image_share=0.0)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _masks(out: Path, r: dict) -> np.ndarray:
    return np.stack(
        [cv2.imread(str(out / r["mask_dir"] / f"{i:04d}.png"), cv2.IMREAD_GRAYSCALE) > 127 for i in range(r["frames"])]
    )


@pytest.fixture(scope="module")
def hard_set(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    """One pair of each edit type with every hard factor on, kept losslessly comparable (no regenerate)."""
    out = tmp_path_factory.mktemp("hard") / "set"
    d = Difficulty(motion=True, camera=True, distractors=True, resize_replace=True)
    generate(out, 6, seed=3, demo_dir=demo_dir, difficulty=d, **TINY)
    return out


def test_easy_difficulty_is_byte_identical_to_the_default(tmp_path: Path, demo_dir: Path) -> None:
    """`--difficulty easy` (no factor) writes exactly the files the default call writes, so the
    demo's DVC stage and its lock do not move."""
    generate(tmp_path / "a", 4, seed=2, demo_dir=demo_dir, **TINY)
    generate(tmp_path / "b", 4, seed=2, demo_dir=demo_dir, difficulty=Difficulty.preset("easy"), **TINY)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert "factors" not in load_ground_truth(tmp_path / "a")[0]


def test_hard_masks_are_exactly_the_changed_pixels(hard_set: Path) -> None:
    """Under motion, occlusion, distractors and camera moves, every local-edit frame's mask is the
    set of pixels that differ beyond codec noise, and the mask follows the object from frame to
    frame (it moves and changes size)."""
    for r in load_ground_truth(hard_set):
        assert r["factors"] == ["motion", "camera", "distractors", "resize_replace"]
        if r["edit_type"] not in ("local_add", "local_remove", "local_replace", "recolor"):
            continue
        src, tgt = read_frames(hard_set / r["src"]), read_frames(hard_set / r["tgt"])
        masks = _masks(hard_set, r)
        changed = np.abs(src.astype(int) - tgt.astype(int)).max(axis=-1) > 20
        kernel = np.ones((5, 5), np.uint8)
        for m, c in zip(masks, changed):
            core = cv2.erode(m.astype(np.uint8), kernel) > 0
            ring = cv2.dilate(m.astype(np.uint8), kernel) == 0
            if core.sum() >= 20:  # a frame where the object is mostly hidden has no inside to test
                assert c[core].mean() > 0.8, r["edit_type"]  # codec blur only at the rim
            assert c[ring].mean() < 0.02, r["edit_type"]
        centres = np.array([np.argwhere(m).mean(axis=0) for m in masks])
        areas = masks.reshape(len(masks), -1).sum(axis=1)
        assert np.ptp(centres, axis=0).max() > 5 and areas.max() > 1.2 * areas.min()


def test_resized_replacement_has_another_size(hard_set: Path) -> None:
    """A replace under `resize_replace` records a size ratio far from 1, and its box differs in size."""
    (rec,) = [r for r in load_ground_truth(hard_set) if r["edit_type"] == "local_replace"]
    assert rec["size_ratio"] <= 0.75 or rec["size_ratio"] >= 1.3


def test_photometric_only_pairs_are_no_edit_bad_input(tmp_path: Path, demo_dir: Path) -> None:
    """`photometric_only` targets differ everywhere a little (gain, noise, lossy re-encode) and nowhere
    semantically: ground truth says no_edit, empty masks and the expected qc_no_edit."""
    out = tmp_path / "photo"
    generate(out, 2, seed=1, demo_dir=demo_dir, difficulty=Difficulty(photometric_only=True), **TINY)
    for r in load_ground_truth(out):
        assert r["edit_type"] == "no_edit" and r["expected_qc"] == "qc_no_edit" and r["box"] is None
        assert not _masks(out, r).any()
        src, tgt = read_frames(out / r["src"]).astype(int), read_frames(out / r["tgt"]).astype(int)
        diff = np.abs(src - tgt).max(axis=-1)
        assert 2 < diff.mean() < 40  # regenerated over the whole frame, but no object changed


def test_cli_hard_preset_and_bad_preset(tmp_path: Path, demo_dir: Path) -> None:
    """`kiwi synth --difficulty hard` lists the factors it used; an unknown preset is a one-line user error."""
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    args = ["synth", "--out", str(tmp_path / "s"), "--n", "2", "--frames", "3", "--height", "64", "--width", "96"]
    result = CliRunner().invoke(app, [*args, "--difficulty", "hard", "--demo-dir", str(demo_dir)])
    assert result.exit_code == 0, result.output
    assert "difficulty factors: motion, camera, regenerate, distractors, resize_replace" in result.output
    bad = CliRunner().invoke(app, [*args, "--difficulty", "extreme", "--demo-dir", str(demo_dir)])
    assert isinstance(bad.exception, KiwiUserError) and "--difficulty" in str(bad.exception)
