"""Edit regions (RefVIE stage 2): where did the target change, what kind of edit is it, and is the pair usable?

Why this module: it is the stage's entry point and its quality gate. `find_edit_region` aligns
the source onto the target (`difference.align_source` undoes a re-crop of a few pixels) and
onto its photometry (`photometric.py` undoes a regenerated target's colour/gain shift), runs
the chosen `Grounder` and `Segmenter` (the default, weight-free `diff` ones live in
`backends/diff.py`), names the edit (`edit_types.type_decision`), on a regenerated target
decides the masks' edge pixels from a mixing model (`edge_refine.py`), applies what that type
implies to the masks (`finalize_masks`) and rejects pairs that cannot become training samples
(`SampleRejected` with a `qc_*` reason). Constants below were tuned with the rest of the stage
on 60 synth pairs at 128x224 (benchmarks/refvie_pipeline.py).
"""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.background import background_masks
from kiwi_platform.refvie.difference import _check_pair, align_source, mask_box
from kiwi_platform.refvie.edge_refine import refine_edges
from kiwi_platform.refvie.edit_types import prompt_edit_type, type_decision
from kiwi_platform.refvie.photometric import apply_photometry, denoise_size, fit_photometry, smooth
from kiwi_platform.refvie.types import LOCAL_TYPES, EditRegion, Grounder, SampleRejected, Segmenter

#: A "local" instruction whose change covers more than this share of the frame is not local.
LOCAL_COVERS_FRAME = 0.5
#: A mask above this share of the frame is "full" for a local edit ...
FULL_MASK_LOCAL = 0.9
#: ... and for a background change (which must keep some foreground).
FULL_MASK_BACKGROUND = 0.995
#: Changed share (pixels above the strong threshold) under which a pair counts as unedited.
NO_EDIT_SHARE = 2e-4
#: On a regenerated target (photometric model applied), a change that is both this faint (typical ΔE'
#: below this multiple of the high threshold) and this small (share of the clip's pixels) is the
#: re-encode's artefacts, not an edit. Measured on kiwi synth at 96x160 and 128x224: regeneration-only
#: blobs ΔE' 12.5-12.7 (1.0x-1.3x the high threshold) over <= 0.17% of the pixels; real edits under
#: regeneration ΔE' >= 23 over >= 1.6%.
WEAK_CHANGE = 1.5
WEAK_SHARE = 0.005


def finalize_masks(
    masks: np.ndarray,
    edit_type: str,
    diff: np.ndarray | None = None,
    source: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> np.ndarray:
    """Apply what the edit type implies: a style edits every pixel; a background swap edits all
    but the kept foreground (`background.background_masks`, which may use the clips to tell a
    foreground moved by the target's regeneration from new content)."""
    if edit_type == "global_style":
        return np.ones_like(masks, dtype=bool)
    if edit_type != "background_change":
        return masks
    return background_masks(masks, diff, source, target)


def find_edit_region(
    source: np.ndarray, target: np.ndarray, prompt: str, grounder: Grounder, segmenter: Segmenter
) -> EditRegion:
    """Ground, segment and classify one pair; raises SampleRejected with a qc_* reason.

    The source is first aligned onto the target (`align_source`: pairs re-cropped by a few
    pixels); the shift is in `scores` (shift_y, shift_x) so later stages can align it the same way.
    Then a regenerated target's global colour/gain shift is undone on the source
    (`photometric.fit_photometry`, recorded as `photo_*` scores) and, when its noise is above
    codec level, both clips are median-filtered (`denoise_size`): the grounder then sees the
    semantic edit, not the regeneration.

    Rejections: identical clips, codec noise only or a photometric regeneration only (qc_no_edit); a local instruction while the
    pixels changed over most of the frame (qc_local_edit_covers_frame, judged on the grounder's
    raw change); no region from the segmenter (qc_empty_mask); a segmenter mask covering the
    frame for a local edit, or a background swap with no kept foreground (qc_full_mask).
    """
    _check_pair(source, target)
    if source.size == 0:
        raise SampleRejected("qc_backend_error", "empty clip")
    if np.array_equal(source, target):
        raise SampleRejected("qc_no_edit", "source and target are pixel-identical", 0.0)
    source, (dy, dx) = align_source(source, target)
    photo = fit_photometry(source, target)
    source = apply_photometry(source, photo)
    matched, original = source, target  # unsmoothed, for the sub-pixel edges
    size = denoise_size(photo.noise) if photo.applied else 0
    source, target = smooth(source, size), smooth(target, size)
    grounding = grounder.ground(source, target, prompt)
    grounding.scores = {**grounding.scores, **photo.scores, "denoise_size": float(size)}
    strong = grounding.scores.get("strong_share")
    if strong is not None and strong < NO_EDIT_SHARE:
        raise SampleRejected("qc_no_edit", f"only {strong:.2e} of the pixels changed beyond codec noise", strong)
    strength, changed = grounding.scores.get("changed_strength"), grounding.scores.get("changed_share")
    high = grounding.scores.get("threshold_high")
    if (
        photo.applied
        and None not in (strength, changed, high)
        and strength < WEAK_CHANGE * high
        and changed < WEAK_SHARE
    ):
        raise SampleRejected(
            "qc_no_edit", f"only faint re-encoding changes ({changed:.2%} of pixels) beyond the regeneration", changed
        )
    named = prompt_edit_type(prompt)
    if named in LOCAL_TYPES and changed is not None and changed > LOCAL_COVERS_FRAME:
        raise SampleRejected(
            "qc_local_edit_covers_frame",
            f"the instruction names a local edit ({named}) but {changed:.0%} of the frame changed",
            changed,
        )
    masks = segmenter.segment(source, target, grounding, prompt).astype(bool)
    if masks.shape != source.shape[:3]:
        raise SampleRejected("qc_backend_error", f"segmenter returned masks {masks.shape}, expected {source.shape[:3]}")
    share = float(masks.mean())
    if not masks.any() and photo.applied:  # a regenerated target whose differences are all noise-like
        raise SampleRejected("qc_no_edit", "no region changed beyond the target's global photometric change", 0.0)
    if not masks.any():
        raise SampleRejected("qc_empty_mask", "no edited region was found", 0.0)
    if named in LOCAL_TYPES and changed is None and share > LOCAL_COVERS_FRAME:
        raise SampleRejected(
            "qc_local_edit_covers_frame",
            f"the instruction names a local edit ({named}) but {share:.0%} of the frame changed",
            share,
        )
    cached = getattr(grounding, "diff", None)
    diff = cached[0] if cached is not None and cached[0].shape == masks.shape else None
    decision = type_decision(prompt, masks, source, target, diff)  # prompt and pixels, disagreement kept
    edit_type, confidence = decision.edit_type, decision.confidence
    if photo.applied:  # a regenerated target: its lossy re-encode smeared every edge (edge_refine.py)
        masks = refine_edges(masks, matched, original, edit_type)
    masks = finalize_masks(masks, edit_type, diff, matched, original)
    share = float(masks.mean())
    if (edit_type in LOCAL_TYPES and share > FULL_MASK_LOCAL) or (
        edit_type == "background_change" and share > FULL_MASK_BACKGROUND
    ):
        raise SampleRejected("qc_full_mask", f"the {edit_type} mask covers {share:.0%} of the frame", share)
    if not masks.any():
        raise SampleRejected("qc_empty_mask", "no edited region left after clean-up", 0.0)
    boxes = [mask_box(m) for m in masks]
    scores = {
        **grounding.scores,
        **decision.scores(),
        "mask_share": share,
        "type_confidence": confidence,
        "shift_y": float(dy),
        "shift_x": float(dx),
    }
    return EditRegion(
        masks=masks,
        box=mask_box(masks),
        frame_boxes=boxes,
        edit_type=edit_type,
        type_confidence=confidence,
        scores=scores,
    )
