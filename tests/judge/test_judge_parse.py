"""The answer parser and the rubric data: what is accepted, what is rejected, and the cap rule."""

from __future__ import annotations

import json

import pytest

from kiwi_platform.judge import REFERENCE_MATCH, MalformedJudgeAnswer, apply_cap, parse_answer
from kiwi_platform.judge.rubrics import Rubric
from tests.judge.json_rubrics import OPENVE, REFVIE

GOOD = {"instruction_compliance": 4, "detail_preservation": 3, "temporal_consistency": 5}


def test_bare_fenced_and_prose_answers_parse_to_the_same_scores() -> None:
    """A judge that wraps its JSON in a ```json fence or in prose is still understood."""
    obj = json.dumps({"scores": GOOD, "reason": "mostly right"})
    answers = [
        obj,
        f"```json\n{obj}\n```",
        f"Sure! Here you go:\n```\n{obj}\n```\nThanks.",
        f"My verdict is {obj} and that is final.",
    ]
    for text in answers:
        parsed = parse_answer(text, OPENVE)
        assert parsed.scores == GOOD
        assert parsed.reason == "mostly right"


def test_keys_are_matched_loosely_and_integral_floats_accepted() -> None:
    """'Instruction Compliance' and 4.0 are read as instruction_compliance = 4; extra keys are ignored."""
    text = json.dumps(
        {"scores": {"Instruction Compliance": 4.0, "detail-preservation": 2, "temporal_consistency": 1, "overall": 3}}
    )
    parsed = parse_answer(text, OPENVE)
    assert parsed.scores == {"instruction_compliance": 4, "detail_preservation": 2, "temporal_consistency": 1}
    assert all(type(v) is int for v in parsed.scores.values())


@pytest.mark.parametrize(
    "answer, why",
    [
        ("", "empty"),
        ("The edit is good, 4/5.", "scores"),
        (json.dumps({"score": 4}), "scores"),
        (json.dumps({"scores": {"instruction_compliance": 4, "detail_preservation": 3}}), "temporal_consistency"),
        (json.dumps({"scores": {**GOOD, "temporal_consistency": 6}}), "outside 1..5"),
        (json.dumps({"scores": {**GOOD, "temporal_consistency": 0}}), "outside 1..5"),
        (json.dumps({"scores": {**GOOD, "detail_preservation": 3.5}}), "not an integer"),
        (json.dumps({"scores": {**GOOD, "detail_preservation": "4"}}), "not a number"),
        (json.dumps({"scores": {**GOOD, "detail_preservation": True}}), "not a number"),
        ('```json\n{"scores": {"instruction_compliance": 4,\n```', "scores"),
    ],
)
def test_malformed_answers_are_rejected_with_the_reason(answer: str, why: str) -> None:
    """Missing dimensions, out-of-range, fractional or non-numeric scores never reach a results table."""
    with pytest.raises(MalformedJudgeAnswer, match=why):
        parse_answer(answer, OPENVE)


def test_refvie_cap_clamps_quality_and_harmony_to_fidelity() -> None:
    """A stable but wrong edit (fidelity 2, quality 5, harmony 4) scores 2, 2, 2 and is flagged capped."""
    raw = {"reference_fidelity": 2, "matting_quality": 5, "physical_harmony": 4}
    scores, capped = apply_cap(raw, REFVIE)
    assert scores == {"reference_fidelity": 2, "matting_quality": 2, "physical_harmony": 2}
    assert capped is True
    assert raw["matting_quality"] == 5  # the judge's raw answer is kept unchanged

    ok = {"reference_fidelity": 4, "matting_quality": 4, "physical_harmony": 3}
    assert apply_cap(ok, REFVIE) == (ok, False)
    # OpenVE has no cap: a low first dimension leaves the others alone.
    openve = {"instruction_compliance": 1, "detail_preservation": 5, "temporal_consistency": 5}
    assert apply_cap(openve, OPENVE) == (openve, False)


def test_rubric_hash_is_stable_and_changes_with_the_text() -> None:
    """Cached scores are tied to the exact rubric text: same text, same hash; edited text, new hash."""
    assert len({REFERENCE_MATCH.rubric_hash, OPENVE.rubric_hash, REFVIE.rubric_hash}) == 3
    same = Rubric(
        name=REFVIE.name,
        system=REFVIE.system,
        task=REFVIE.task,
        dimension_help=REFVIE.dimension_help,
        cap_by=REFVIE.cap_by,
        capped=REFVIE.capped,
    )
    assert same.rubric_hash == REFVIE.rubric_hash
    edited = Rubric(
        name=REFVIE.name,
        system=REFVIE.system,
        task=REFVIE.task + " Be harsh.",
        dimension_help=REFVIE.dimension_help,
        cap_by=REFVIE.cap_by,
        capped=REFVIE.capped,
    )
    assert edited.rubric_hash != REFVIE.rubric_hash
    assert len(REFVIE.rubric_hash) == 64


def test_prompts_name_every_dimension_and_the_json_shape() -> None:
    """The user prompt lists each dimension, asks for strict JSON, states the cap, and ends with the case text."""
    prompt = REFVIE.user_prompt("Instruction: replace the dog with the reference cat")
    for dim in REFVIE.dimensions:
        assert f'"{dim}": <1-5>' in prompt
    assert "never be higher than reference_fidelity" in prompt
    assert prompt.rstrip().endswith("replace the dog with the reference cat")
    assert "never be higher" not in OPENVE.user_prompt("x")
