"""Reference synthesis: objects on white with a margin, removed objects from the source, clean backgrounds."""

from __future__ import annotations

import numpy as np
import pytest

from kiwi_platform.lib.image_metrics import cosine, ssim
from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.quality import PerceptualHashEmbedder
from kiwi_platform.refvie.references import OpenCVInpainter, make_reference
from kiwi_platform.refvie.types import LOCAL_TYPES, EditRegion, SampleRejected


def _references(analysed):
    return [(p, r, pipeline.synthesize_reference(p.target, p.source, r, min_side=8)) for p, r in analysed]


def _hue(image: np.ndarray, mask: np.ndarray) -> float:
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hues = hsv[..., 0][mask & (hsv[..., 1] > 80)].astype(float) * 2 * np.pi / 180
    return float(np.angle(np.exp(1j * hues).mean()) % (2 * np.pi)) * 180 / (2 * np.pi)


def test_local_references_sit_on_white_with_margin(analysed):
    """Object references have a white border at least 4 px wide on every side and non-white content inside."""
    for p, _r, ref in _references(analysed):
        if p.edit_type not in LOCAL_TYPES:
            continue
        m = 4
        border = np.concatenate(
            [ref[:m].reshape(-1, 3), ref[-m:].reshape(-1, 3), ref[:, :m].reshape(-1, 3), ref[:, -m:].reshape(-1, 3)]
        )
        assert (border == 255).all(), p.record["pair"]
        assert (ref.min(axis=-1) < 200).mean() > 0.2, p.record["pair"]  # the object is there


def test_local_references_show_the_true_object(analysed):
    """The reference shows the edited object: same hue as the true reference and similar overall."""
    emb = PerceptualHashEmbedder()
    for p, _r, ref in _references(analysed):
        if p.edit_type not in LOCAL_TYPES:
            continue
        ours = ref.min(axis=-1) < 245
        truth = p.gt_reference.min(axis=-1) < 245
        dh = abs(_hue(ref, ours) - _hue(p.gt_reference, truth))
        assert min(dh, 360 - dh) < 25, (p.record["pair"], p.edit_type)
        e = emb.embed([ref, p.gt_reference])
        assert cosine(e[0], e[1]) > 0.6, p.record["pair"]


def test_removed_object_reference_comes_from_the_source(analysed):
    """For local_remove the reference is the removed object (cut from the source), not the clean target."""
    p, r = next((p, r) for p, r in analysed if p.edit_type == "local_remove")
    ref = pipeline.synthesize_reference(p.target, p.source, r, min_side=8)
    from_target = make_reference(
        p.target, EditRegion(r.masks, r.box, r.frame_boxes, "local_add", 1.0), OpenCVInpainter(), min_side=8
    )
    emb = PerceptualHashEmbedder().embed([ref, p.gt_reference, from_target])
    assert cosine(emb[0], emb[1]) > cosine(emb[2], emb[1])


def test_background_reference_is_the_clean_new_background(analysed):
    """A background swap's reference resembles the true new background (SSIM >= 0.6) at frame size."""
    for p, _r, ref in _references(analysed):
        if p.edit_type == "background_change":
            assert ref.shape == p.target.shape[1:]
            assert ssim(p.gt_reference, ref) >= 0.6, p.record["pair"]


def test_style_reference_is_the_stylized_frame(analysed):
    """A global style's reference is the first stylized target frame."""
    for p, _r, ref in _references(analysed):
        if p.edit_type == "global_style":
            assert np.array_equal(ref, p.target[0])


def _region(masks: np.ndarray, edit_type: str = "local_add") -> EditRegion:
    return EditRegion(
        masks=masks, box=(0, 0, 1, 1), frame_boxes=[None] * len(masks), edit_type=edit_type, type_confidence=1.0
    )


def test_white_object_gives_blank_reference():
    """An 'object' that is white on the white canvas ends in qc_blank_reference."""
    target = np.full((3, 64, 96, 3), 255, np.uint8)
    masks = np.zeros((3, 64, 96), bool)
    masks[:, 20:44, 30:60] = True
    with pytest.raises(SampleRejected) as err:
        make_reference(target, _region(masks), OpenCVInpainter())
    assert err.value.reason == "qc_blank_reference"


def test_uniform_style_frame_gives_blank_reference():
    """A 'style' that turned the frame into one flat colour ends in qc_blank_reference."""
    target = np.full((2, 64, 96, 3), 90, np.uint8)
    with pytest.raises(SampleRejected) as err:
        make_reference(target, _region(np.ones((2, 64, 96), bool), "global_style"), OpenCVInpainter())
    assert err.value.reason == "qc_blank_reference"


def test_tiny_object_gives_too_small_reference():
    """An object a few pixels wide ends in qc_reference_too_small (minimum side configurable)."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    masks = np.zeros((2, 64, 96), bool)
    masks[:, 30:35, 40:46] = True
    with pytest.raises(SampleRejected) as err:
        make_reference(target, _region(masks), OpenCVInpainter(), min_side=16)
    assert err.value.reason == "qc_reference_too_small"
    assert make_reference(target, _region(masks), OpenCVInpainter(), min_side=4).shape[0] >= 5 + 8


def test_best_frame_prefers_whole_large_sharp_object():
    """The object is cut from the frame where it is whole and largest, not where the border cuts it."""
    target = np.zeros((3, 64, 96, 3), np.uint8)
    masks = np.zeros((3, 64, 96), bool)
    masks[0, 0:30, 0:30] = True  # largest but touching the border
    masks[1, 20:40, 30:50] = True  # whole, 20x20
    masks[2, 20:30, 30:40] = True  # whole, smaller
    for t in range(3):
        target[t][masks[t]] = (40 * (t + 1), 100, 200)
    ref = make_reference(target, _region(masks), OpenCVInpainter(), min_side=4)
    assert ref.shape[:2] == (20 + 2 * 5, 20 + 2 * 5)
    assert tuple(ref[15, 15]) == (80, 100, 200)


def test_references_are_deterministic(analysed):
    """Synthesizing a reference twice gives identical bytes (content hashes stay stable)."""
    for p, r in analysed[:6]:
        a = pipeline.synthesize_reference(p.target, p.source, r, min_side=8)
        b = pipeline.synthesize_reference(p.target, p.source, r, min_side=8)
        assert a.tobytes() == b.tobytes()
