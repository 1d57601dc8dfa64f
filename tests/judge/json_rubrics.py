"""JSON-answer rubrics for the judge client tests (the generic call, retry, cache and batch machinery).

The benchmark rubrics answer in upstream's line format (tests/judge/test_upstream_rubrics.py); the
client machinery is rubric-agnostic, and these two JSON rubrics (the three-dimension shape, one with
a cap) exercise it the way `REFERENCE_MATCH` (RefVIE reference QC) uses it in production.
"""

from kiwi_platform.judge.rubrics import _SYSTEM, Rubric

OPENVE = Rubric(
    name="test_openve_json",
    system=_SYSTEM,
    task=(
        "You see an edit instruction, frames of the source video and the same frames of the edited "
        "video. Judge how well the edited video carries out the instruction."
    ),
    dimension_help=(
        (
            "instruction_compliance",
            "does the edited video do what the instruction asks, fully and only that? 5 = exactly, "
            "1 = not at all or something else was edited.",
        ),
        (
            "detail_preservation",
            "outside the requested change, are the content, identity and layout of the source kept, and "
            "is the result free of artefacts, blur and distortions? 5 = untouched and clean, 1 = "
            "heavily damaged.",
        ),
        (
            "temporal_consistency",
            "is the edit stable across frames: no flicker, no popping, the edited content follows the "
            "motion of the scene? 5 = perfectly stable, 1 = unusable.",
        ),
    ),
)

REFVIE = Rubric(
    name="test_refvie_json",
    system=_SYSTEM,
    task=(
        "You see an edit instruction, a reference image, frames of the source video and the same "
        "frames of the edited video. The edit must insert or swap in the subject or background shown "
        "in the reference. Judge how faithfully and how well it was done."
    ),
    dimension_help=(
        (
            "reference_fidelity",
            "does the edited video show the reference's subject (identity, shape, colours, details) or "
            "background (layout, style) and not a generic look-alike? 5 = unmistakably the reference, "
            "1 = unrelated or missing.",
        ),
        (
            "matting_quality",
            "are the boundaries of the inserted content clean and is it stable over time: no halos, "
            "cut-outs, flicker or drifting edges? 5 = seamless, 1 = broken.",
        ),
        (
            "physical_harmony",
            "does the inserted content belong in the scene: lighting, shadows, scale, perspective, "
            "occlusion and motion consistent with the video? 5 = fully natural, 1 = pasted on.",
        ),
    ),
    cap_by="reference_fidelity",
    capped=("matting_quality", "physical_harmony"),
)
