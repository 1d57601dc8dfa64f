"""evaluate_checkpoint on a tiny random checkpoint, with the judge on a local fake OpenAI server."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.evaluation import EvalSettings, Suite, compare, evaluate_checkpoint
from tests.evaluation.conftest import make_judge, read_json
from tests.fakes.openai_server import FakeOpenAI

SETTINGS = EvalSettings.tiny()


def test_evaluate_generates_scores_and_second_run_makes_zero_judge_calls(
    tiny_checkpoint: Path, small_suite: Suite, fake_judge_server: FakeOpenAI, tmp_path: Path
) -> None:
    """A full evaluation writes outputs, tables, pictures and headline metrics; judging runs concurrently
    (never above the bound); re-evaluating the same checkpoint reuses every output and makes zero judge calls."""
    judge = make_judge(fake_judge_server, tmp_path / "judge.sqlite", max_concurrency=2)
    stages: list[tuple[str, int, int]] = []
    first = evaluate_checkpoint(
        tiny_checkpoint,
        small_suite,
        tmp_path / "eval",
        settings=SETTINGS,
        judge=judge,
        progress=lambda *a: stages.append(a),
    )
    n = len(small_suite.cases)
    assert first.judged and first.generated == n and first.reused == 0
    assert first.judge_calls == n == fake_judge_server.calls
    assert fake_judge_server.max_in_flight == 2  # concurrent, and bounded by max_concurrency
    assert ("generate", n, n) in stages and ("score", n, n) in stages and ("judge", n, n) in stages
    # the judge's fixed answers come back through aggregation (RefVIE capped to reference_fidelity=2)
    assert first.headline["openve/overall"] == pytest.approx(4.0)
    assert first.headline["refvie/overall"] == pytest.approx(2.0)
    assert first.headline["refvie/subject/temporal_stability"] == pytest.approx(2.0)
    assert 0.0 <= first.headline["offline/preservation_ssim"] <= 1.0
    assert "offline/target_psnr" in first.headline and "offline/reference_fidelity" in first.headline
    assert set(first.tables) == {"openve_judge", "openve_offline", "refvie_judge", "refvie_offline"}
    for key, path in first.images.items():
        assert path.is_file() and path.stat().st_size > 1000, key
    assert any(k.startswith("grid/refvie/") for k in first.images) and "chart/openve_judge" in first.images
    saved = read_json(first.results_path)
    assert saved["judge_calls"] == n and saved["headline"]["openve/overall"] == pytest.approx(4.0)
    assert saved["timings"]["generation_s"] > saved["timings"]["offline_metrics_s"] > 0
    assert (tmp_path / "eval" / "tables" / "openve_judge.md").read_text().startswith("| category |")

    fake_judge_server.reset()
    second = evaluate_checkpoint(tiny_checkpoint, small_suite, tmp_path / "eval", settings=SETTINGS, judge=judge)
    assert fake_judge_server.calls == 0 and second.judge_calls == 0 and second.judge_cached == n
    assert second.generated == 0 and second.reused == n
    assert second.headline == first.headline
    assert compare(second.headline, first.headline, ["openve/overall", "refvie/overall"], 0.0).promote


def test_without_a_judge_only_offline_metrics_are_reported(
    tiny_checkpoint: Path, small_suite: Suite, tmp_path: Path
) -> None:
    """No judge configured: no judge tables or judge headline metrics, and the markdown says so."""
    result = evaluate_checkpoint(tiny_checkpoint, small_suite, tmp_path / "eval", settings=SETTINGS)
    assert not result.judged and result.judge_calls == 0
    assert set(result.tables) == {"openve_offline", "refvie_offline"}
    assert not any(k.startswith(("openve/", "refvie/")) for k in result.headline)
    assert "offline/temporal_consistency" in result.headline
    assert result.markdown().startswith("_No VLM judge configured")
    assert "judge_score" not in result.rows.columns


def test_new_settings_or_checkpoint_regenerate_and_rejudge(
    tiny_checkpoint: Path, small_suite: Suite, fake_judge_server: FakeOpenAI, tmp_path: Path
) -> None:
    """Outputs and judge scores are reused only for the same (checkpoint, case, settings); missing outputs are remade."""
    one = Suite(small_suite.name, small_suite.root, small_suite.cases[:1])
    judge = make_judge(fake_judge_server, tmp_path / "judge.sqlite")
    a = evaluate_checkpoint(tiny_checkpoint, one, tmp_path / "eval", settings=SETTINGS, judge=judge)
    b = evaluate_checkpoint(tiny_checkpoint, one, tmp_path / "eval", settings=EvalSettings.tiny(seed=1), judge=judge)
    c = evaluate_checkpoint(
        tiny_checkpoint, one, tmp_path / "eval", settings=SETTINGS, judge=judge, checkpoint_id="another-checkpoint"
    )
    assert (a.generated, b.generated, c.generated) == (1, 1, 1)
    assert (a.judge_calls, b.judge_calls, c.judge_calls) == (1, 1, 1)
    assert fake_judge_server.calls == 3
    # a deleted output is regenerated (an interrupted run resumes); same inputs, so cached scores still apply
    output = tmp_path / "eval" / a.rows.loc[0, "output"]
    output.unlink()
    d = evaluate_checkpoint(tiny_checkpoint, one, tmp_path / "eval", settings=SETTINGS, judge=judge)
    assert output.is_file() and d.generated == 1 and d.judge_calls == 0
    assert d.headline["offline/preservation_psnr"] == pytest.approx(a.headline["offline/preservation_psnr"], abs=0.5)


def test_a_case_the_judge_cannot_score_is_reported_not_dropped(
    tiny_checkpoint: Path, small_suite: Suite, tmp_path: Path
) -> None:
    """A judge that keeps answering one case with prose gets that case marked `judge_error` (reason code
    malformed); the others are scored, the judge table counts only judged cases, offline metrics cover all."""
    from tests.evaluation.conftest import OPENVE_ANSWER
    from tests.fakes.openai_server import malformed, run_fake_openai
    from tests.judge.upstream_answers import by_instruction, upstream_answer

    two = Suite(small_suite.name, small_suite.root, [c for c in small_suite.cases if c.suite == "openve"][:2])
    good, bad = two.cases
    assert good.prompt != bad.prompt
    with run_fake_openai(by_instruction({good.prompt: upstream_answer(OPENVE_ANSWER)}, default=malformed())) as fake:
        judge = make_judge(fake, tmp_path / "judge.sqlite")
        result = evaluate_checkpoint(tiny_checkpoint, two, tmp_path / "eval", settings=SETTINGS, judge=judge)
    rows = result.rows.set_index("case_id")
    assert rows.loc[bad.case_id, "judge_error"].startswith("malformed")
    assert rows.loc[good.case_id, "judge_score"] == pytest.approx(4.0)
    assert set(result.judge_errors) == {bad.case_id}
    assert int(result.tables["openve_judge"].loc["overall", "n"]) == 1
    assert int(result.tables["openve_offline"].loc["overall", "n"]) == 2
    assert result.headline["openve/overall"] == pytest.approx(4.0)  # only the scored category counts
    assert rows["preservation_psnr"].notna().all()
