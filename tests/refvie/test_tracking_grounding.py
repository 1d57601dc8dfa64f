"""Grounding that holds on regenerated pairs: moving objects, a shared camera pan, a global
photometric change and a slight misalignment of the target (numpy-built cases in hard_pairs.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kiwi_platform.lib.image_metrics import mask_iou
from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.difference import estimate_shift, mask_box
from kiwi_platform.refvie.mask_store import load_masks, save_masks
from kiwi_platform.refvie.photometric import apply_photometry, fit_photometry
from kiwi_platform.refvie.tracking import complete_tracks, link_tracks, prune_flicker
from kiwi_platform.refvie.types import SampleRejected
from tests.refvie.hard_pairs import hard_pair


@pytest.mark.parametrize("kind", ["add", "remove", "recolor"])
@pytest.mark.parametrize("seed, shift", [(0, (0, 0)), (1, (1, 2))])
def test_moving_object_is_followed_frame_by_frame(kind, seed, shift):
    """An object moving through a panning shot, in a target regenerated over the whole frame (gain,
    colour offset, noise, JPEG q60, optionally shifted by a pixel or two), gets a mask that follows it
    in every frame (per-frame IoU >= 0.85) and the edit type the instruction names, not a full-frame
    background change."""
    p = hard_pair(kind, seed=seed, shift=shift)
    region = pipeline.analyse_pair(p.source, p.target, p.prompt)
    ious = [mask_iou(m, g) for m, g in zip(region.masks, p.masks)]
    assert min(ious) >= 0.85, ious
    assert region.edit_type == p.edit_type
    assert (region.scores["shift_y"], region.scores["shift_x"]) == shift
    assert region.scores["photo_applied"] == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"shift": (0, 1)},
        {"shift": (-3, 4), "pan": 0},
        {"regen": {"noise": 5.0, "quality": 40}},
        {"regen": {"gain": (1.15, 0.88, 1.1), "offset": (-10.0, 12.0, 5.0)}},
    ],
)
def test_photometric_change_only_is_no_edit(kwargs):
    """A target that only went through a generative editor's regeneration (colour/gain shift, sensor
    noise, lossy re-encode, a small shift) and shows no semantic edit ends in qc_no_edit, not in a
    background change or a local edit covering the frame."""
    p = hard_pair("none", seed=5, **kwargs)
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(p.source, p.target, p.prompt)
    assert err.value.reason == "qc_no_edit"


def test_photometric_fit_recovers_gain_and_offset():
    """The per-channel gain/offset is recovered from the whole clip although an edit covers part of
    it, and mapping the source with it removes the colour cast of unedited pixels (per-channel bias)."""
    p = hard_pair("add", seed=2, regen={"gain": (1.12, 0.9, 1.05), "offset": (-8.0, 10.0, 4.0), "noise": 2.0})
    model = fit_photometry(p.source, p.target)
    assert model.applied
    assert np.allclose(model.gain, (1.12, 0.9, 1.05), atol=0.03)
    assert np.allclose(model.offset, (-8.0, 10.0, 4.0), atol=5.0)
    mapped = apply_photometry(p.source, model).astype(np.int16)
    unedited = ~p.masks
    before = np.abs((p.source.astype(np.int16) - p.target)[unedited].mean(axis=0))
    after = np.abs((mapped - p.target)[unedited].mean(axis=0))
    assert before.max() > 5.0 and after.max() < 1.5, (before, after)


def test_photometric_model_is_not_applied_to_new_content():
    """A background swap (new content over most of the frame) or a grey-scale filter is not
    'explained away' as a gain change: the model stays unapplied and the source untouched."""
    p = hard_pair("none", seed=3, photometric=False)
    other = hard_pair("none", seed=4, photometric=False)
    swap = fit_photometry(p.source, other.target)
    assert not swap.applied
    assert apply_photometry(p.source, swap) is p.source
    grey = np.repeat(p.source.mean(axis=-1, keepdims=True), 3, axis=-1).astype(np.uint8)
    assert not fit_photometry(p.source, grey).applied


def test_codec_noise_only_leaves_source_untouched():
    """A pair with codec-level differences only is not remapped (same bytes as before this stage)."""
    p = hard_pair("add", seed=0, photometric=False)
    model = fit_photometry(p.source, p.target)
    assert not model.applied


@pytest.mark.parametrize("shift", [(0, 1), (2, -3), (-4, 0)])
def test_shift_found_under_photometric_change(shift):
    """A regenerated target shifted by a few pixels is re-aligned although every pixel's colour changed."""
    p = hard_pair("add", seed=6, shift=shift)
    assert estimate_shift(p.source, p.target) == shift


def _blob(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_fast_small_object_is_one_track_and_flicker_is_dropped():
    """A small object jumping 20 px per frame (farther than its own size) stays one track and is kept,
    while blobs that appear in a single frame are dropped as flicker."""
    t, h, w = 6, 64, 160
    masks = np.stack([_blob(h, w, 30, 12 + 22 * i, 3) for i in range(t)])
    masks[2] |= _blob(h, w, 55, 140, 2)  # flicker, one frame only
    tracks = link_tracks(masks)
    assert tracks.count == 2
    assert sorted(tracks.length().tolist()) == [1, t]
    pruned = prune_flicker(masks, min_area=10, tracks=tracks)  # both blobs are below 4 x min_area
    assert np.array_equal(pruned, np.stack([_blob(h, w, 30, 12 + 22 * i, 3) for i in range(t)]))


def test_shapes_are_completed_per_track():
    """When two objects of different size move together and one is half missed in a frame, it is
    completed from its own earlier view, and the other object is left as it was."""
    t, h, w = 6, 80, 200
    big = np.stack([_blob(h, w, 25, 30 + 10 * i, 12) for i in range(t)])
    small = np.stack([_blob(h, w, 65, 40 + 12 * i, 5) for i in range(t)])
    masks = big | small
    damaged = masks.copy()
    damaged[3, :, : 30 + 10 * 3] &= ~big[3, :, : 30 + 10 * 3]  # left half of the big object missed
    done = complete_tracks(damaged)
    assert mask_iou(done[3] & (np.arange(h)[:, None] < 45), big[3]) >= 0.9
    assert np.array_equal(done[3] & (np.arange(h)[:, None] >= 50), small[3])


def test_exported_masks_stay_per_frame(tmp_path):
    """Masks written for export keep one mask per frame that moves with the object (not one static
    region), and read back bit-identical."""
    p = hard_pair("add", seed=0)
    region = pipeline.analyse_pair(p.source, p.target, p.prompt)
    path = save_masks(tmp_path / "m.npz", region.masks)
    back = load_masks(path)
    assert np.array_equal(back, region.masks)
    xs = [mask_box(m)[0] for m in back]
    assert xs == sorted(xs) and xs[-1] - xs[0] > back.shape[2] // 2
    assert region.frame_boxes == [mask_box(m) for m in back]
