"""Layout of a synthetic set: manifest, sidecar, media sizes, masks, references."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.synth import EDIT_TYPES, load_ground_truth, load_mask
from kiwi_platform.synth.media import read_frames
from tests.synth.conftest import SMALL


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_rows_match_ground_truth_and_paths_exist(synth_set: Path) -> None:
    """The manifest uses the upstream columns, relative paths that exist, and one sidecar record per row."""
    rows = _manifest(synth_set)
    records = load_ground_truth(synth_set)
    assert list(rows[0]) == ["prompt", "src_video", "tgt_video", "ref_image"]
    assert len(rows) == len(records) == 8
    for number, (row, record) in enumerate(zip(rows, records), start=1):
        assert record["row"] == number
        assert (row["prompt"], row["src_video"], row["tgt_video"]) == (record["prompt"], record["src"], record["tgt"])
        assert row["ref_image"] == record["reference"] == f"gt/{record['pair']}/reference.png"
        for rel in (row["src_video"], row["tgt_video"], row["ref_image"], record["mask_dir"]):
            assert not Path(rel).is_absolute()
            assert (synth_set / rel).exists(), rel


def test_every_edit_type_appears_and_image_share_is_respected(synth_set: Path) -> None:
    """All six edit types are generated, and round(n * image_share) pairs are images."""
    records = load_ground_truth(synth_set)
    assert {r["edit_type"] for r in records} == set(EDIT_TYPES)
    assert sum(r["media"] == "image" for r in records) == 2
    assert all(r["prompt"].endswith(".") and len(r["prompt"]) > 15 for r in records)


def test_media_have_requested_size_and_frames(synth_set: Path) -> None:
    """Videos decode to the requested frames and size; image pairs are 1-frame PNGs of the same size."""
    for r in load_ground_truth(synth_set):
        src, tgt = read_frames(synth_set / r["src"]), read_frames(synth_set / r["tgt"])
        expected = 1 if r["media"] == "image" else SMALL["frames"]
        assert src.shape == tgt.shape == (expected, SMALL["height"], SMALL["width"], 3)
        assert r["frames"] == expected
        assert r["src"].endswith(".png" if r["media"] == "image" else ".mp4")
        masks = sorted((synth_set / r["mask_dir"]).glob("*.png"))
        assert [m.name for m in masks] == [f"{t:04d}.png" for t in range(expected)]
        raw = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
        assert raw.shape == (SMALL["height"], SMALL["width"]) and set(np.unique(raw)) <= {0, 255}
        assert len(r["object_boxes"]) == expected


def test_box_is_the_first_frame_mask_bounds(synth_set: Path) -> None:
    """`box` is the bounding box of the first-frame mask; local edits' object boxes contain the mask."""
    for r in load_ground_truth(synth_set):
        mask = load_mask(synth_set, r["row"], 0)
        ys, xs = np.nonzero(mask)
        assert r["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        if r["edit_type"] in {"local_add", "local_remove", "recolor"}:
            assert r["box"] == r["object_boxes"][0]
        if r["edit_type"] == "local_replace":  # mask = old | new object, boxes = the new object
            (x0, y0, x1, y1), (a0, b0, a1, b1) = r["box"], r["object_boxes"][0]
            assert x0 <= a0 and y0 <= b0 and a1 <= x1 and b1 <= y1
        if r["edit_type"].startswith("local_") or r["edit_type"] == "recolor":
            assert mask.mean() < 0.5


def test_reference_images_match_their_kind(synth_set: Path) -> None:
    """Object references sit on a white canvas; background and style references equal the target's frame 0 there."""
    for r in load_ground_truth(synth_set):
        ref = cv2.cvtColor(cv2.imread(str(synth_set / r["reference"])), cv2.COLOR_BGR2RGB).astype(int)
        if r["reference_kind"] in {"object", "removed_object"}:
            border = np.concatenate([ref[0], ref[-1], ref[:, 0], ref[:, -1]])
            assert (border == 255).all()
            assert (ref < 200).any(axis=-1).mean() > 0.1  # the object is there
        else:
            tgt = read_frames(synth_set / r["tgt"])[0].astype(int)
            region = load_mask(synth_set, r["row"], 0)
            assert ref.shape == tgt.shape
            assert np.median(np.abs(ref - tgt)[region]) < 8  # lossless reference vs lossy target


def test_load_mask_rejects_out_of_range(synth_set: Path, tmp_path: Path) -> None:
    """Bad row/frame numbers and a folder without ground truth give a user error, not a crash."""
    with pytest.raises(KiwiUserError, match="row 99"):
        load_mask(synth_set, 99, 0)
    with pytest.raises(KiwiUserError, match="frame 50"):
        load_mask(synth_set, 1, 50)
    with pytest.raises(KiwiUserError, match="ground_truth.jsonl"):
        load_ground_truth(tmp_path)
