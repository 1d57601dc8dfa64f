"""Offline metrics on hand-made cases: each says what a user reading the table can rely on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiwi_platform.evaluation.media import CaseMedia
from kiwi_platform.evaluation.metrics import (
    PSNR_CAP,
    case_metrics,
    estimate_edit_mask,
    masked_psnr,
    reference_fidelity,
    region_agreement,
    temporal,
)
from kiwi_platform.evaluation.suites import Case

T, H, W = 3, 48, 64


def _scene(seed: int = 0) -> np.ndarray:
    """A textured, slowly moving clip (so SSIM and temporal terms are meaningful)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (H, W + T * 2, 3), dtype=np.uint8)
    base = np.asarray(base, np.float32)
    base = (base + np.roll(base, 1, axis=0) + np.roll(base, 1, axis=1)) / 3
    return np.stack([base[:, 2 * t : 2 * t + W] for t in range(T)]).astype(np.uint8)


def _mask() -> np.ndarray:
    mask = np.zeros((T, H, W), bool)
    mask[:, 10:30, 20:44] = True
    return mask


def _case(suite: str = "openve") -> Case:
    return Case("c1", suite, "local_add" if suite == "openve" else "subject", "Add a red square.", "src.mp4")


def test_identity_output_has_perfect_preservation_and_temporal_scores() -> None:
    """An output equal to the source preserves everything: PSNR at the cap, SSIM 1, temporal consistency 1, no flicker."""
    src = _scene()
    row = case_metrics(CaseMedia(_case(), src, src.copy(), target=src.copy(), mask=_mask()))
    assert row["preservation_psnr"] == PSNR_CAP
    assert row["preservation_ssim"] == pytest.approx(1.0)
    assert row["target_l1"] == 0.0
    assert row["temporal_consistency"] == pytest.approx(1.0)
    assert row["flicker"] == pytest.approx(0.0)
    assert row["region_agreement"] is None  # nothing changed: agreement is undefined, not 0 or 1
    assert row["edit_strength"] == 0.0


def test_damage_outside_the_mask_lowers_preservation_but_damage_inside_does_not() -> None:
    """Changing pixels outside the edit mask scores worse on preservation than the same change inside it."""
    src, mask = _scene(), _mask()
    inside, outside = src.copy(), src.copy()
    inside[:, 12:28, 22:42] = 255 - inside[:, 12:28, 22:42]
    outside[:, 30:46, 0:20] = 255 - outside[:, 30:46, 0:20]  # same area, outside the mask
    good = case_metrics(CaseMedia(_case(), src, inside, mask=mask))
    bad = case_metrics(CaseMedia(_case(), src, outside, mask=mask))
    assert good["preservation_psnr"] == PSNR_CAP
    assert good["preservation_ssim"] > 0.98  # SSIM windows touching the mask edge see a little of the edit
    assert bad["preservation_psnr"] < 30 and bad["preservation_ssim"] < good["preservation_ssim"] - 0.1
    assert good["region_agreement"] == pytest.approx(1.0)
    assert bad["region_agreement"] == pytest.approx(0.0)


def test_region_agreement_is_the_share_of_change_inside_the_mask() -> None:
    """Half the change energy inside the mask gives agreement 0.5."""
    src, mask = np.full((1, 10, 10, 3), 100, np.uint8), np.zeros((1, 10, 10), bool)
    mask[0, :, :5] = True
    out = src.copy()
    out[0, 0, 0] = 200  # +100 inside
    out[0, 0, 9] = 200  # +100 outside
    assert region_agreement(src, out, mask) == pytest.approx(0.5)
    mask_full = np.ones_like(mask)
    assert region_agreement(src, out, mask_full) is None  # a whole-frame mask cannot disagree


def test_flickering_output_scores_lower_temporal_consistency() -> None:
    """Random per-frame noise on a smooth source lowers temporal consistency below 1 and raises flicker."""
    src = np.repeat(np.full((1, H, W, 3), 120, np.uint8), 4, axis=0)
    noisy = np.clip(src.astype(int) + np.random.default_rng(1).integers(-40, 40, src.shape), 0, 255).astype(np.uint8)
    calm, jumpy = temporal(src, src), temporal(src, noisy)
    assert calm["temporal_consistency"] == pytest.approx(1.0)
    assert jumpy["temporal_consistency"] < 0.5 and jumpy["flicker"] > 0.05
    assert temporal(src[:1], src[:1]) == {"temporal_consistency": None, "flicker": None}  # images: not applicable


def test_reference_fidelity_prefers_the_output_that_shows_the_reference() -> None:
    """An output whose edited region looks like the reference scores higher than one with another object."""
    ref = np.full((40, 40, 3), 255, np.uint8)
    ref[8:32, 8:32] = (220, 30, 30)
    ref[16:24, 16:24] = (30, 30, 220)
    src, mask = _scene(), _mask()
    right, wrong = src.copy(), src.copy()
    right[:, 10:30, 20:44] = cv2.resize(ref[8:32, 8:32], (24, 20), interpolation=cv2.INTER_NEAREST)
    wrong[:, 10:30, 20:44] = (20, 200, 20)
    good = reference_fidelity(right, mask, ref)["reference_fidelity"]
    bad = reference_fidelity(wrong, mask, ref)["reference_fidelity"]
    assert 0.0 <= bad < good <= 1.0
    assert good > 0.6


def test_estimated_mask_finds_the_changed_block_and_is_marked_estimated() -> None:
    """Without a known mask the changed area is estimated from the difference, and rows say so."""
    src = _scene()
    out = src.copy()
    out[:, 10:30, 20:44] = 255 - out[:, 10:30, 20:44]
    est = estimate_edit_mask(src, out)
    truth = _mask()
    iou = (est & truth).sum() / (est | truth).sum()
    assert iou > 0.7
    row = case_metrics(CaseMedia(_case(), src, out))
    assert row["mask_source"] == "estimated"
    assert row["preservation_psnr"] > 30  # the untouched part is recognised as preserved
    assert row["region_agreement"] is None  # would be true by construction with an estimated mask


def test_masked_psnr_ignores_unselected_pixels_and_handles_empty_selection() -> None:
    """PSNR only looks at the selected pixels; an empty selection gives None, not a number."""
    a = np.zeros((1, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255
    sel = np.ones((1, 4, 4), bool)
    sel[0, 0, 0] = False
    assert masked_psnr(a, b, sel) == PSNR_CAP
    assert masked_psnr(a, b) < 30
    assert masked_psnr(a, b, np.zeros_like(sel)) is None
