"""Edit regions: masks, boxes and edit types from the default CPU backends, and their rejections."""

from __future__ import annotations

import numpy as np
import pytest

from kiwi_platform.lib.image_metrics import clip_mask_iou
from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.backends.diff import DiffGrounder
from kiwi_platform.refvie.edit_types import prompt_edit_type
from kiwi_platform.refvie.regions import find_edit_region
from kiwi_platform.refvie.types import EDIT_TYPES, LOCAL_TYPES, EditRegion, SampleRejected


def _regions(analysed):
    return [(p, r) for p, r in analysed if isinstance(r, EditRegion)]


def test_every_synthetic_pair_is_accepted(analysed):
    """Valid synthetic edits of every type flow through stage 2 (none quarantined by mistake)."""
    rejected = [(p.record["pair"], r.reason) for p, r in analysed if not isinstance(r, EditRegion)]
    assert rejected == []
    assert {p.edit_type for p, _ in analysed} == set(EDIT_TYPES)


def test_local_masks_match_ground_truth(analysed):
    """Masks of local edits overlap the true edited pixels (mean IoU >= 0.85 at 96x160, every pair >= 0.7)."""
    ious = [clip_mask_iou(r.masks, p.gt_masks) for p, r in _regions(analysed) if p.edit_type in LOCAL_TYPES]
    assert len(ious) == 8
    assert np.mean(ious) >= 0.85, ious
    assert min(ious) >= 0.7, ious


def test_background_and_style_masks_match_ground_truth(analysed):
    """A background swap masks everything but the kept foreground; a style masks the whole frame."""
    for p, r in _regions(analysed):
        if p.edit_type in ("background_change", "global_style"):
            assert clip_mask_iou(r.masks, p.gt_masks) >= 0.9, p.record["pair"]
        if p.edit_type == "background_change":
            assert 0.5 < r.masks.mean() < 0.995  # a foreground was kept


def test_edit_type_accuracy(analysed):
    """The edit type is right for >= 90% of pairs with the prompt, and >= 80% from geometry alone."""
    regions = _regions(analysed)
    with_prompt = np.mean([r.edit_type == p.edit_type for p, r in regions])
    blind = np.mean([pipeline.analyse_pair(p.source, p.target, "").edit_type == p.edit_type for p, _ in regions])
    assert with_prompt >= 0.9
    assert blind >= 0.8


def test_boxes_enclose_masks(analysed):
    """Per-frame boxes are the tight (x0, y0, x1, y1) boxes of the masks, x1/y1 exclusive."""
    for _, r in _regions(analysed):
        for mask, box in zip(r.masks, r.frame_boxes):
            ys, xs = np.nonzero(mask)
            assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert r.masks.dtype == bool and 0.0 <= r.type_confidence <= 1.0


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("Add a red ball moving from left to right.", "local_add"),
        ("Remove the blue star from the video.", "local_remove"),
        ("Replace the green square with a pink hexagon.", "local_replace"),
        ("Change the color of the yellow triangle to purple.", "recolor"),
        ("Replace the background behind the cat with a beach.", "background_change"),
        ("Turn the video into a flat cartoon with bold black outlines.", "global_style"),
        ("Make the image look like an old sepia-toned photograph.", "global_style"),
        ("Do something nice.", None),
    ],
)
def test_prompt_keywords(prompt, expected):
    """Instruction wording maps to the edit type it names; background/style phrasing wins over local verbs."""
    assert prompt_edit_type(prompt) == expected


def test_identical_pair_is_no_edit(pairs):
    """Source == target ends in qc_no_edit."""
    clip = pairs[0].source
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(clip, clip.copy(), "Add a red ball.")
    assert err.value.reason == "qc_no_edit"


def test_codec_noise_only_is_no_edit(pairs):
    """A target that differs only by faint noise (re-encoding) is not an edit either."""
    clip = pairs[0].source
    noisy = np.clip(clip.astype(np.int16) + np.random.default_rng(0).integers(-2, 3, clip.shape), 0, 255)
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(clip, noisy.astype(np.uint8), "Add a red ball.")
    assert err.value.reason == "qc_no_edit"


def test_local_instruction_with_whole_frame_change(pairs):
    """A style-filtered pair described as a local edit ends in qc_local_edit_covers_frame."""
    style = next(p for p in pairs if p.edit_type == "global_style")
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(style.source, style.target, "Add a small red ball in the corner.")
    assert err.value.reason == "qc_local_edit_covers_frame"


def test_scattered_specks_give_empty_mask(pairs):
    """Changes too small and scattered to be an object (isolated pixels) end in qc_empty_mask."""
    src = pairs[0].source.copy()
    tgt = src.copy()
    rng = np.random.default_rng(1)
    t, h, w = src.shape[:3]
    idx = rng.choice(h * w, size=h * w // 100, replace=False)
    tgt.reshape(t, h * w, 3)[:, idx] = 255 - tgt.reshape(t, h * w, 3)[:, idx]
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(src, tgt, "Add a red ball.")
    assert err.value.reason == "qc_empty_mask"


class _FullSegmenter:
    name = "full"

    def segment(self, source, target, grounding, prompt):
        return np.ones(source.shape[:3], bool)


class _EmptySegmenter:
    name = "empty"

    def segment(self, source, target, grounding, prompt):
        return np.zeros(source.shape[:3], bool)


def test_segmenter_full_mask_for_local_edit(pairs):
    """A segmenter that returns the whole frame for a small local edit ends in qc_full_mask."""
    add = next(p for p in pairs if p.edit_type == "local_add")
    with pytest.raises(SampleRejected) as err:
        find_edit_region(add.source, add.target, add.prompt, DiffGrounder(), _FullSegmenter())
    assert err.value.reason == "qc_full_mask"


def test_segmenter_empty_mask(pairs):
    """A segmenter that finds nothing ends in qc_empty_mask."""
    add = next(p for p in pairs if p.edit_type == "local_add")
    with pytest.raises(SampleRejected) as err:
        find_edit_region(add.source, add.target, add.prompt, DiffGrounder(), _EmptySegmenter())
    assert err.value.reason == "qc_empty_mask"


def test_background_swap_without_kept_foreground_is_full_mask(pairs):
    """'Replace the background' where nothing at all was kept (unrelated frames) ends in qc_full_mask."""
    rng = np.random.default_rng(2)
    src = rng.integers(0, 256, pairs[0].source.shape, dtype=np.uint8)
    tgt = 255 - src
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(src, tgt, "Replace the background behind the dog with a beach.")
    assert err.value.reason == "qc_full_mask"


def test_backend_crash_is_quarantined(pairs):
    """A backend that raises becomes qc_backend_error instead of stopping the batch."""

    class Broken:
        name = "broken"

        def segment(self, *args):
            raise RuntimeError("CUDA out of memory")

    p = pairs[0]
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(p.source, p.target, p.prompt, segmenter=Broken())
    assert err.value.reason == "qc_backend_error" and "CUDA" in err.value.message


def test_mismatched_shapes_are_quarantined(pairs):
    """Source and target of different sizes are rejected with a reason, not a crash."""
    p = pairs[0]
    with pytest.raises(SampleRejected) as err:
        pipeline.analyse_pair(p.source, p.target[:, :-32], p.prompt)
    assert err.value.reason == "qc_backend_error"


def test_regions_are_deterministic(pairs):
    """Re-running stage 2 gives the same masks, boxes, type and scores (idempotent re-materialization)."""
    for p in pairs[:6]:
        a = pipeline.analyse_pair(p.source, p.target, p.prompt)
        b = pipeline.analyse_pair(p.source, p.target, p.prompt)
        assert np.array_equal(a.masks, b.masks)
        assert (a.frame_boxes, a.edit_type, a.type_confidence, a.scores) == (
            b.frame_boxes,
            b.edit_type,
            b.type_confidence,
            b.scores,
        )


def test_shape_completion_restores_partly_missed_frames():
    """When an object crosses background of its own colour, frames where only part of it was found
    get its whole shape back from a neighbouring frame (rigid motion)."""
    from kiwi_platform.refvie.difference import complete_shapes

    masks = np.zeros((6, 48, 80), bool)
    for t in range(6):
        masks[t, 10:30, 5 + 6 * t : 25 + 6 * t] = True
    truth = masks.copy()
    masks[3, 10:30, 5 + 18 : 15 + 18] = False  # the left half of frame 3 was missed
    masks[4, 20:30] = False  # the bottom half of frame 4 too
    done = complete_shapes(masks)
    assert np.array_equal(done, truth)
    other = masks.copy()
    other[3] = False
    other[3, 40:44, 0:4] = True  # a small unrelated blob is not turned into the object
    assert np.array_equal(complete_shapes(other)[3], other[3])


def test_slightly_shifted_target_is_realigned(pairs):
    """A target re-cropped by a few pixels is aligned before differencing: the edit is found, not the shift."""
    p = next(p for p in pairs if p.edit_type == "local_add")
    shifted = np.roll(p.target, (2, -3), axis=(1, 2))
    region = pipeline.analyse_pair(p.source, shifted, p.prompt)
    truth = np.roll(p.gt_masks, (2, -3), axis=(1, 2))
    assert region.edit_type == "local_add"
    assert clip_mask_iou(region.masks, truth) >= 0.7
