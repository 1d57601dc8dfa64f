"""The grounding details issue 12's hard set needed: no phantom shift, a photometric model that holds
on narrow-range scenes, tight edges on lossy targets, smeared distractors dropped, and the kept
foreground of a background swap on a regenerated target (numpy-built cases, no synth set)."""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.alignment import _phase_shift, estimate_shift
from kiwi_platform.refvie.backends.diff import contrast_peel
from kiwi_platform.refvie.photometric import fit_photometry
from kiwi_platform.refvie.regions import finalize_masks
from kiwi_platform.refvie.tracking import drop_faint_tracks
from tests.refvie.hard_pairs import hard_pair


def test_aligned_regenerated_pair_gets_no_shift():
    """A regenerated target that is not moved is left where it is: neither phase correlation's
    half-pixel bias on even-width frames nor the target's gain/offset invents a shift (a wrong
    shift turns every edge of the frame into an edit)."""
    for kind, seed in (("add", 2), ("remove", 3), ("recolor", 4), ("none", 5)):
        p = hard_pair(kind, seed=seed, shift=(0, 0), w=224, h=128)
        assert _phase_shift(p.source, p.target, 4) == (0, 0), (kind, seed)
        assert estimate_shift(p.source, p.target) == (0, 0), (kind, seed)


def test_photometric_model_holds_on_a_channel_with_a_narrow_range():
    """A scene with little red, regenerated so that its red levels 92-112 come out as 0.54 x level
    + 48 (levels move by 3 at most: the kind of fit a narrow channel gives), is still recognised as
    a plain regeneration: the model is judged by how far it moves the levels the clip has, not by
    extrapolating its slope to 0 and 255 (which would read as a 69-level change)."""
    rng = np.random.default_rng(0)
    source = np.zeros((3, 48, 64, 3), np.uint8)
    source[..., 0] = rng.integers(92, 113, size=source.shape[:3])
    source[..., 1:] = rng.integers(20, 230, size=(*source.shape[:3], 2))
    target = source * np.array([0.54, 1.05, 0.97]) + np.array([48, -4, 3])
    target = np.clip(np.round(target + rng.normal(0, 1.0, size=target.shape)), 0, 255).astype(np.uint8)
    model = fit_photometry(source, target)
    assert model.applied, model.scores
    assert abs(model.gain[0] - 0.54) < 0.1


def test_contrast_peel_moves_a_smeared_edge_back_to_half_contrast():
    """A square whose change ramps off over 2 px outside its true edge (a lossy re-encode's smear)
    loses the ramp, keeps its interior, and a mask with a step edge is left as it is."""
    diff = np.zeros((40, 40), np.float32)
    diff[10:30, 10:30] = 40.0
    smeared = diff.copy()
    for k, level in ((1, 15.0), (2, 8.0)):  # ring k px outside the square
        ring = np.zeros_like(diff, bool)
        ring[10 - k : 30 + k, 10 - k : 30 + k] = True
        ring[10 - k + 1 : 30 + k - 1, 10 - k + 1 : 30 + k - 1] = False
        smeared[ring] = level
    truth = diff > 0
    found = smeared > 5.0
    peeled = contrast_peel(found, smeared, layers=2, ratio=0.5)
    assert np.array_equal(peeled, truth)
    assert np.array_equal(contrast_peel(truth, diff, layers=2, ratio=0.5), truth)


def test_small_faint_track_beside_the_edit_is_dropped():
    """Of two tracks through a clip, a small one whose change is faint (a distractor's codec smear)
    is dropped; a small but strong one (a second real change) is kept."""
    t = 5
    masks = np.zeros((t, 60, 80), bool)
    diff = np.zeros((t, 60, 80), np.float32)
    for i in range(t):
        masks[i, 10:30, 5 + 2 * i : 25 + 2 * i] = True  # the edit: 400 px, strong
        diff[i, 10:30, 5 + 2 * i : 25 + 2 * i] = 40.0
        masks[i, 45:50, 60 - 2 * i : 65 - 2 * i] = True  # a distractor's smear: 25 px, faint
        diff[i, 45:50, 60 - 2 * i : 65 - 2 * i] = 12.0
    kept = drop_faint_tracks(masks, diff)
    assert kept[:, :40].sum() == masks[:, :40].sum() and not kept[:, 40:].any()
    diff[:, 45:50] *= 3.0  # now as strong as the edit: a real change, kept
    assert np.array_equal(drop_faint_tracks(masks, diff), masks)


def test_background_swap_keeps_a_foreground_the_regeneration_moved():
    """After a background swap on a regenerated target the kept foreground changed by a few ΔE'
    (gain, noise, re-encode) while the new background changed far more; the background mask
    leaves the foreground out instead of covering the whole frame."""
    rng = np.random.default_rng(1)
    t, h, w = 3, 64, 96
    foreground = np.zeros((h, w), bool)
    foreground[20:50, 30:60] = True
    diff = rng.uniform(12.0, 60.0, size=(t, h, w)).astype(np.float32)  # new background
    diff[:, foreground] = rng.uniform(3.0, 9.0, size=(t, int(foreground.sum())))  # regenerated foreground
    masks = np.ones((t, h, w), bool)
    out = finalize_masks(masks, "background_change", diff)
    for m in out:
        iou = (m & ~foreground).sum() / (m | ~foreground).sum()
        assert iou >= 0.99, iou
