"""The VLM reference judge asks an OpenAI-compatible endpoint (via kiwi_platform.judge) and maps 1-5 to [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.vlm_judge import VlmReferenceJudge
from kiwi_platform.refvie.types import ReferenceJudge, SampleRejected
from tests.fakes.openai_server import Reply, answer, run_fake_openai


def _images(frame_pair) -> tuple[np.ndarray, np.ndarray]:
    target = frame_pair[1][0]
    return np.full((24, 24, 3), 255, np.uint8), target[16:40, 40:64]


@pytest.mark.parametrize(("score", "expected"), [(1, 0.0), (3, 0.5), (4, 0.75), (5, 1.0)])
def test_score_maps_rubric_scale_to_unit_interval(frame_pair, score: int, expected: float) -> None:
    """A judge answer of s (1-5) on reference_match becomes (s-1)/4; both images and the instruction are sent."""
    reference, region = _images(frame_pair)
    with run_fake_openai(answer({"reference_match": score})) as fake:
        judge = VlmReferenceJudge(base_url=fake.base_url, model="judge", api_key=fake.api_key)
        assert isinstance(judge, ReferenceJudge)
        assert judge.score(reference, region, "Add a red square", "local_add") == pytest.approx(expected)
        request = fake.requests[-1]
    assert len(request.image_urls) == 2
    assert "Add a red square" in request.text and "local_add" in request.text


def test_cached_answers_are_reused_across_runs(frame_pair, tmp_path: Path) -> None:
    """With a cache path, re-judging the same inputs (a re-materialized batch) makes no new request."""
    reference, region = _images(frame_pair)
    with run_fake_openai(answer({"reference_match": 2})) as fake:
        for _ in range(2):
            judge = VlmReferenceJudge(
                base_url=fake.base_url, model="judge", api_key=fake.api_key, cache_path=tmp_path / "judge.sqlite"
            )
            assert judge.score(reference, region, "Add a red square", "local_add") == pytest.approx(0.25)
        other = judge.score(reference, region, "Add a blue square", "local_add")
        assert other == pytest.approx(0.25) and fake.calls == 2


def test_unusable_answer_quarantines_the_sample(frame_pair) -> None:
    """A judge that keeps answering without valid scores rejects the sample as qc_backend_error."""
    reference, region = _images(frame_pair)
    with run_fake_openai(Reply(content="I think it looks fine.")) as fake:
        judge = VlmReferenceJudge(
            base_url=fake.base_url, model="judge", api_key=fake.api_key, client_options={"max_malformed_retries": 0}
        )
        with pytest.raises(SampleRejected) as info:
            judge.score(reference, region, "Add a red square", "local_add")
    assert info.value.reason == "qc_backend_error"


def test_misconfigured_endpoint_stops_the_run(frame_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint configured, or a rejected API key, is a user error (one line), not a quarantined sample."""
    reference, region = _images(frame_pair)
    monkeypatch.delenv("KIWI_JUDGE_BASE_URL", raising=False)
    with pytest.raises(KiwiUserError, match="judge endpoint not configured"):
        VlmReferenceJudge(model="judge").score(reference, region, "x", "local_add")
    with run_fake_openai() as fake:
        judge = VlmReferenceJudge(base_url=fake.base_url, model="judge", api_key="wrong-key")
        with pytest.raises(KiwiUserError) as info:
            judge.score(reference, region, "x", "local_add")
    assert not isinstance(info.value, SampleRejected) and "\n" not in str(info.value)
