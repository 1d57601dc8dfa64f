"""The benchmark rubrics are upstream's: same prompts, same answer acceptance, cap enforced, retried when invalid."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kiwi_platform.judge import (
    OPENVE_RUBRICS,
    REFVIE_RUBRICS,
    Judge,
    JudgeClient,
    JudgeError,
    MalformedJudgeAnswer,
    apply_cap,
    parse_answer,
)
from kiwi_platform.judge import upstream_prompts as prompts
from tests.fakes.openai_server import Reply, run_fake_openai

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures/upstream/judge_golden.json").read_text(encoding="utf-8"))
UPSTREAM_NAMES = {
    "GLOBAL_STYLE": prompts.OPENVE_GLOBAL_STYLE,
    "BACKGROUND_CHANGE": prompts.OPENVE_BACKGROUND_CHANGE,
    "LOCAL_CHANGE": prompts.OPENVE_LOCAL_CHANGE,
    "LOCAL_REMOVE": prompts.OPENVE_LOCAL_REMOVE,
    "LOCAL_ADD": prompts.OPENVE_LOCAL_ADD,
    "SUBJECT_REFERENCE_PROMPT": prompts.REFVIE_SUBJECT,
    "BACKGROUND_REFERENCE_PROMPT": prompts.REFVIE_BACKGROUND,
}
GOOD = (
    "Brief reasoning: fine.\nInstruction Compliance: 2\nVisual Quality & Stability: 5\nConsistency & Detail Fidelity: 4"
)


def _rubric(benchmark: str, category: str):
    return (OPENVE_RUBRICS if benchmark == "openve" else REFVIE_RUBRICS)[category]


def test_prompts_are_upstreams_byte_for_byte() -> None:
    """Each system prompt hashes to the sha256 recorded from upstream's script, so the judge reads the paper's rubric."""
    assert set(GOLDEN["prompt_sha256"]) == set(UPSTREAM_NAMES)
    for name, text in UPSTREAM_NAMES.items():
        assert hashlib.sha256(text.encode()).hexdigest() == GOLDEN["prompt_sha256"][name], name


def test_every_category_has_its_own_prompt_with_the_instruction_filled_in() -> None:
    """OpenVE judges each edited_type with its own prompt, RefVIE subject/background with theirs; the cap rule is stated."""
    assert set(OPENVE_RUBRICS) == {"global_style", "background_change", "local_change", "local_remove", "local_add"}
    assert set(REFVIE_RUBRICS) == {"subject", "background"}
    systems = {r.system_prompt("Add a red kite.") for r in [*OPENVE_RUBRICS.values(), *REFVIE_RUBRICS.values()]}
    assert len(systems) == 7 and all("Add a red kite." in s and "{" not in s for s in systems)
    assert all("should not be higher than" in s or "should no higher than" in s for s in systems)
    hashes = {r.rubric_hash for r in [*OPENVE_RUBRICS.values(), *REFVIE_RUBRICS.values()]}
    assert len(hashes) == 7  # a different prompt is a different cache key


@pytest.mark.parametrize("case", GOLDEN["parser"], ids=lambda c: c["answer"][:40].replace("\n", "|") or "empty")
def test_parser_accepts_exactly_what_upstream_check_format_accepts(case: dict) -> None:
    """Accepted answers give upstream's scores (in its order), rejected ones raise, so the client asks again."""
    rubric = _rubric(case["benchmark"], case["category"])
    if case["upstream"] is False:
        with pytest.raises(MalformedJudgeAnswer):
            parse_answer(case["answer"], rubric)
    else:
        parsed = parse_answer(case["answer"], rubric)
        assert [parsed.scores[d] for d in rubric.dimensions] == case["upstream"]


@pytest.mark.parametrize("case", GOLDEN["deviations"], ids=["refvie-missing-line", "refvie-other-subtask-labels"])
def test_incomplete_refvie_answers_upstream_lets_through_are_rejected(case: dict) -> None:
    """A RefVIE answer with a missing line or the wrong subtask's labels is asked again, not stored short."""
    assert case["upstream"] is not False  # upstream would have stored it
    with pytest.raises(MalformedJudgeAnswer, match="lacks the line"):
        parse_answer(case["answer"], _rubric(case["benchmark"], case["category"]))


def test_cap_second_and_third_scores_by_the_first_in_code() -> None:
    """A judge that ignores the rule (2, 5, 4) is capped to (2, 2, 2); raw scores are kept apart."""
    rubric = OPENVE_RUBRICS["local_add"]
    raw = parse_answer(GOOD, rubric).scores
    assert raw == {"instruction_compliance": 2, "visual_quality": 5, "detail_fidelity": 4}
    capped, changed = apply_cap(raw, rubric)
    assert changed and capped == {"instruction_compliance": 2, "visual_quality": 2, "detail_fidelity": 2}
    ok = {"reference_fidelity": 4, "temporal_stability": 4, "physical_harmony": 1}
    assert apply_cap(ok, REFVIE_RUBRICS["background"]) == (ok, False)


def test_judge_sends_the_upstream_prompt_retries_a_bad_answer_and_caps(tmp_path: Path) -> None:
    """Against the fake endpoint: system = upstream prompt with the instruction; an out-of-range answer is
    asked again with what was wrong; the valid second answer is parsed and capped."""
    bad = "Instruction Compliance: 6\nVisual Quality & Stability: 5\nConsistency & Detail Fidelity: 4"
    with run_fake_openai([Reply(content=bad), Reply(content=GOOD)]) as fake:
        judge = Judge(JudgeClient(fake.base_url, "fake-vlm", fake.api_key, max_retries=0, backoff_s=0.01))
        score = judge.score(
            "case-1", "ckpt", OPENVE_RUBRICS["local_add"], text="", instruction="Add a red kite.", images=()
        )
        assert fake.calls == 2
        first, second = fake.requests
    assert first.system == OPENVE_RUBRICS["local_add"].system_prompt("Add a red kite.")
    assert "Editing instruction is: Add a red kite." in first.system
    assert "outside 1" in second.text or "not a score from 1 to 5" in second.text
    assert score.raw_scores == {"instruction_compliance": 2, "visual_quality": 5, "detail_fidelity": 4}
    assert score.scores == {"instruction_compliance": 2, "visual_quality": 2, "detail_fidelity": 2} and score.capped
    assert score.reason == "fine."


def test_three_invalid_answers_fail_the_case_as_malformed(tmp_path: Path) -> None:
    """Like upstream's three attempts: after three answers without a valid score set the case is a malformed_answer."""
    with run_fake_openai(Reply(content="**Instruction Compliance:** 4")) as fake:
        judge = Judge(JudgeClient(fake.base_url, "fake-vlm", fake.api_key, max_malformed_retries=2))
        with pytest.raises(JudgeError) as err:
            judge.score("c", "k", REFVIE_RUBRICS["subject"], text="", instruction="x")
        assert fake.calls == 3
    assert err.value.reason == "malformed_answer"
