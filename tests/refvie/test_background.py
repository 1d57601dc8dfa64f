"""Background swaps on strongly regenerated targets (`refvie.background`): the kept subject is found
even when the regeneration moved it more than the usual kept-foreground level, and nothing is kept
where nothing was."""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.background import UNCHANGED_MAX, background_masks
from kiwi_platform.refvie.difference import color_difference

T, H, W = 2, 96, 160


def _texture(rng: np.random.Generator, base: tuple[int, int, int]) -> np.ndarray:
    """(T,H,W,3) uint8: a coloured, blotchy texture (smooth noise), different per seed."""
    small = rng.uniform(-60, 60, size=(T, H // 8, W // 8, 3))
    big = np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)
    return np.clip(np.array(base) + big + rng.normal(0, 4, (T, H, W, 3)), 0, 255).astype(np.uint8)


def _pair(keep_subject: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source, target and the subject's mask: the target has a new background and the subject (a
    red patch) under a strong regeneration (a per-channel gain/offset that moves it ~10 ΔE', above
    the usual kept-foreground level, plus noise)."""
    rng = np.random.default_rng(7)
    subject = np.zeros((H, W), bool)
    subject[30:70, 50:100] = True
    source = _texture(rng, (90, 120, 70))
    source[:, subject] = np.clip(np.array([180, 60, 50]) + rng.normal(0, 6, (T, int(subject.sum()), 3)), 0, 255)
    target = _texture(rng, (140, 140, 110))
    if keep_subject:
        regenerated = source.astype(np.float32) * np.array([0.95, 1.0, 1.0]) + np.array([0.0, 24.0, 30.0])
        regenerated += rng.normal(0, 2.0, regenerated.shape)
        target[:, subject] = np.clip(regenerated[:, subject], 0, 255).astype(np.uint8)
    return source, target, subject


def test_strongly_regenerated_subject_is_kept_out_of_the_background_mask() -> None:
    """The subject changed by more than `UNCHANGED_MAX` ΔE' (so the usual level finds no foreground
    and the mask used to cover the whole frame, a qc_full_mask quarantine); with the clips, the
    regeneration fitted on a wider candidate is undone and the subject is left out of the mask."""
    source, target, subject = _pair()
    diff = color_difference(source, target)[0]
    assert float(np.median(diff[:, subject])) > UNCHANGED_MAX  # the case this covers
    masks = np.ones((T, H, W), bool)
    assert background_masks(masks, diff).all()  # without the clips: no foreground found
    out = background_masks(masks, diff, source, target)
    for m in out:
        iou = (m & ~subject).sum() / (m | ~subject).sum()
        assert iou >= 0.95, iou


def test_no_subject_kept_means_a_full_mask() -> None:
    """When the target keeps nothing of the source (all new content), the second try finds no map
    that explains a foreground, and the mask stays the whole frame (quarantined downstream)."""
    source, target, _ = _pair(keep_subject=False)
    diff = color_difference(source, target)[0]
    out = background_masks(np.ones((T, H, W), bool), diff, source, target)
    assert out.all()
