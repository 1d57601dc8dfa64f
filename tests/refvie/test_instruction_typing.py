"""Instruction-aware edit typing (issue 12 item 3): the prompt's parse and the pixels are two witnesses;
a disagreement is kept, flagged and scored lower, never silently resolved."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kiwi_platform.refvie.assembly import QualitySettings, assemble_quadruplets, disagreement_rate
from kiwi_platform.refvie.edit_types import TypeDecision, decide_edit_type
from kiwi_platform.refvie.instruction import parse_instruction
from kiwi_platform.refvie.pipeline import default_backends
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import ground_batch
from kiwi_platform.synth import generate
from kiwi_platform.synth.clip_rows import normalized_rows


@pytest.mark.parametrize(
    "prompt, edit_type, subject, replacement, colour",
    [
        ("Add a red ball moving from left to right.", "local_add", "red ball", "", ""),
        ("Please remove the dog from the video", "local_remove", "dog", "", ""),
        (
            "Replace the green square with a large pink hexagon.",
            "local_replace",
            "green square",
            "large pink hexagon",
            "",
        ),
        ("Swap the cat for a fox", "local_replace", "cat", "fox", ""),
        ("Change the color of the yellow triangle to purple.", "recolor", "yellow triangle", "", "purple"),
        ("Make the car blue", "recolor", "car", "", "blue"),
        ("Change the background to a snowy mountain", "background_change", "", "", ""),
        ("Make it Van Gogh style", "global_style", "", "", ""),
        ("Make the video look like a watercolour painting", "global_style", "", "", ""),
        ("Do something nice.", None, "", "", ""),
    ],
)
def test_instruction_parse(prompt, edit_type, subject, replacement, colour):
    """The rule-based parser names the edit type and the words a reference or a judge needs (the
    object, its replacement, the new colour); background/style wording wins over local verbs."""
    parsed = parse_instruction(prompt)
    assert (parsed.edit_type, parsed.subject, parsed.replacement, parsed.colour) == (
        edit_type,
        subject,
        replacement,
        colour,
    )


def test_disagreement_is_flagged_with_lower_confidence():
    """Agreement scores >= 0.9; a disagreement keeps the instruction's type but is flagged and scored
    at most 0.75 (same family) or 0.6 (local vs whole frame); the flag survives the scores round trip."""
    agree = decide_edit_type("local_add", "local_add", 0.8)
    near = decide_edit_type("local_replace", "recolor", 0.9)
    far = decide_edit_type("local_add", "background_change", 0.9)
    unknown = decide_edit_type(None, "recolor", 0.9)
    assert not agree.disagreement and agree.confidence >= 0.9
    assert near.disagreement and near.edit_type == "local_replace" and near.confidence <= 0.75
    assert far.disagreement and far.confidence <= 0.6 < near.confidence
    assert not unknown.disagreement and unknown.edit_type == "recolor"
    back = TypeDecision.from_scores(near.scores(), near.edit_type, near.confidence)
    assert back == near


@pytest.mark.slow
def test_quadruplets_keep_disagreeing_pairs_with_a_flag(tmp_path: Path, demo_dir: Path) -> None:
    """Through the real region, reference and QC steps: a recolor whose prompt says "replace" stays in
    the quadruplet table with `type_disagreement`, both witnesses and a confidence <= 0.75, and the
    batch's disagreement rate counts it."""
    root = tmp_path / "store"
    out = root / "synth"
    generate(out, 4, seed=11, frames=9, height=96, width=160, image_share=0.0, demo_dir=demo_dir)
    rows = []
    for truth, row in normalized_rows(out, root, height=96, width=160):
        if truth["edit_type"] == "recolor":
            rows.append({**row, "prompt": f"Replace the {truth['recolored']} with a {truth['object']}."})
        elif truth["edit_type"] == "local_add":
            rows.append(row)
    backends = default_backends()
    regions, rejected = ground_batch(
        pd.DataFrame(rows), root, root / "regions", grounder=backends["grounder"], segmenter=backends["segmenter"]
    )
    assert not rejected
    refs, _, _ = synthesize_batch(regions, root, root / "refs", inpainter=backends["inpainter"])
    settings = QualitySettings(16, 8.0, 0.0, 0.999)
    table = assemble_quadruplets(refs, root, judge=backends["judge"], embedder=backends["embedder"], settings=settings)
    quads = table.table.set_index("pair_id")
    flagged = quads.loc[[r["pair_id"] for r in rows if r["prompt"].startswith("Replace")][0]]
    assert bool(flagged["type_disagreement"]) and flagged["edit_type"] == "local_replace"
    assert flagged["instruction_type"] == "local_replace" and flagged["pixel_type"] == "recolor"
    assert flagged["type_confidence"] <= 0.75
    assert disagreement_rate(table.table) == round(float(quads["type_disagreement"].mean()), 4) >= 0.5
