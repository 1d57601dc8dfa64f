"""The high-level Judge: cap rule end to end, caching (zero calls on a second pass), bounded concurrency,
and batches that account for every request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.judge import Judge, JudgeCache, JudgeClient, JudgeError, JudgeRequest, JudgeScore
from tests.fakes.openai_server import FakeRequest, Reply, answer, malformed, run_fake_openai, score_table
from tests.judge.json_rubrics import OPENVE, REFVIE

REPO = Path(__file__).resolve().parents[2]
FRAME = np.zeros((32, 48, 3), dtype=np.uint8)


def _table(n: int) -> dict[str, dict[str, int]]:
    """Distinct, derivable OpenVE scores per case id, so a mix-up between cases would show."""
    return {
        f"case-{i:03d}": {
            "instruction_compliance": 1 + i % 5,
            "detail_preservation": 1 + (i + 1) % 5,
            "temporal_consistency": 1 + (i + 2) % 5,
        }
        for i in range(n)
    }


def _requests(table: dict[str, dict[str, int]], checkpoint: str = "ckpt-1") -> list[JudgeRequest]:
    return [
        JudgeRequest(
            case,
            checkpoint,
            OPENVE,
            text=f"Case id {case}. Instruction: recolor the car",
            images=[("Edited frame", FRAME)],
        )
        for case in table
    ]


def test_refvie_cap_is_enforced_after_parsing(make_client: Callable[..., JudgeClient], tmp_path: Path) -> None:
    """Judge says fidelity 2, quality 5, harmony 4: the result is 2, 2, 2, capped=True, raw answer kept and cached."""
    raw = {"reference_fidelity": 2, "matting_quality": 5, "physical_harmony": 4}
    with run_fake_openai(answer(raw, reason="wrong subject, clean matting")) as fake:
        judge = Judge(make_client(fake), JudgeCache(tmp_path / "c.sqlite"))
        score = judge.score(
            "ref-1",
            "ckpt",
            REFVIE,
            text="swap the dog for the reference cat",
            images=[("Reference", FRAME), ("Edited video", np.stack([FRAME] * 5))],
        )
        again = judge.score("ref-1", "ckpt", REFVIE, text="swap the dog for the reference cat")
    assert score.scores == {"reference_fidelity": 2, "matting_quality": 2, "physical_harmony": 2}
    assert score.capped is True and score.raw_scores == raw and score.mean == 2
    assert (again.scores, again.capped, again.raw_scores, again.cached) == (score.scores, True, raw, True)
    assert fake.calls == 1


def test_second_evaluation_of_a_checkpoint_makes_zero_calls(
    make_client: Callable[..., JudgeClient], tmp_path: Path
) -> None:
    """Re-scoring the same cases for the same checkpoint, model and rubric is served from the sqlite cache,
    even through a new cache object; a new checkpoint or a new judge model is scored again."""
    table = _table(6)
    path = tmp_path / "judge-cache.sqlite"
    with run_fake_openai(score_table(table)) as fake:
        first = Judge(make_client(fake), JudgeCache(path)).score_many(_requests(table))
        assert fake.calls == 6
        second = Judge(make_client(fake), JudgeCache(path)).score_many(_requests(table))
        assert fake.calls == 6
        Judge(make_client(fake), JudgeCache(path)).score_many(_requests(table, checkpoint="ckpt-2"))
        assert fake.calls == 12
        other_model = JudgeClient(fake.base_url, "another-judge", fake.api_key, backoff_s=0.01)
        Judge(other_model, JudgeCache(path)).score_many(_requests(table)[:2])
        assert fake.calls == 14
    assert [s.scores for s in first] == list(table.values())
    assert [s.scores for s in second] == list(table.values())
    assert not any(s.cached for s in first) and all(s.cached for s in second)
    assert len(JudgeCache(path)) == 6 + 6 + 2


def test_concurrency_is_bounded_by_max_concurrency(make_client: Callable[..., JudgeClient]) -> None:
    """A batch runs several calls at once but never more than max_concurrency, even from two threads."""
    table = _table(10)

    def slow_table(req: FakeRequest) -> Reply:
        return replace(score_table(table)(req), delay_s=0.15)

    with run_fake_openai(slow_table) as fake:
        client = make_client(fake, max_concurrency=3)
        judge = Judge(client)
        results: list[list] = []
        threads = [
            threading.Thread(target=lambda part=part: results.append(judge.score_many(part)))
            for part in (_requests(table)[:5], _requests(table)[5:])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert fake.calls == 10
    assert 1 < fake.max_in_flight <= 3
    assert sorted(s.scores["instruction_compliance"] for batch in results for s in batch) == sorted(
        v["instruction_compliance"] for v in table.values()
    )


def test_a_batch_returns_a_result_or_a_reason_for_every_request(
    make_client: Callable[..., JudgeClient], tmp_path: Path
) -> None:
    """Good cases score; an unanswerable case, a malformed-answer case and a missing image come back as
    JudgeError values naming their case, in input order; duplicates are judged once; errors are not cached."""
    table = _table(4)

    def behave(req: FakeRequest) -> Reply:
        return malformed() if "case-garbled" in req.text else score_table(table)(req)

    reqs = _requests(table)
    reqs.insert(1, JudgeRequest("case-unknown", "ckpt-1", OPENVE, text="Case id case-unknown"))
    reqs.insert(3, JudgeRequest("case-garbled", "ckpt-1", OPENVE, text="Case id case-garbled"))
    reqs.append(
        JudgeRequest("case-noimage", "ckpt-1", OPENVE, text="Case id case-000", images=[tmp_path / "missing.jpg"])
    )
    reqs.append(reqs[0])  # same key twice in one batch
    cache = JudgeCache(tmp_path / "c.sqlite")
    with run_fake_openai(behave) as fake:
        out = Judge(make_client(fake, max_malformed_retries=1), cache).score_many(reqs)
        calls_first = fake.calls
        again = Judge(make_client(fake, max_malformed_retries=1), cache).score_many(reqs)
    assert len(out) == len(reqs)
    kinds = [type(r).__name__ for r in out]
    assert kinds == [
        "JudgeScore",
        "JudgeError",
        "JudgeScore",
        "JudgeError",
        "JudgeScore",
        "JudgeScore",
        "JudgeError",
        "JudgeScore",
    ]
    errors = {r.case_id: r for r in out if isinstance(r, JudgeError)}
    assert errors["case-unknown"].code == "bad_request" and errors["case-unknown"].status == 400
    assert errors["case-garbled"].code == "malformed"
    assert errors["case-noimage"].code == "input" and "missing.jpg" in str(errors["case-noimage"])
    scored = [r for r in out if isinstance(r, JudgeScore)]
    assert [s.scores for s in scored[:4]] == list(table.values()) and out[-1] is out[0]
    assert calls_first == 4 + 1 + 2  # 4 cases once each, unknown once (400), garbled twice, no call for the bad input
    assert fake.calls - calls_first == 1 + 2  # second pass: only the failed requests go out again
    assert [type(r).__name__ for r in again] == kinds


def test_cache_is_shared_by_concurrent_processes(make_client: Callable[..., JudgeClient], tmp_path: Path) -> None:
    """Two processes fill one cache file at the same time (sqlite WAL); a third pass then makes zero calls."""
    table = _table(8)
    path = tmp_path / "shared.sqlite"
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from kiwi_platform.judge import Judge, JudgeCache, JudgeClient, JudgeRequest
        from tests.judge.json_rubrics import OPENVE
        url, key, cases = sys.argv[1], sys.argv[2], sys.argv[4:]
        judge = Judge(JudgeClient(url, "fake-vlm-judge", key, backoff_s=0.01, max_concurrency=4),
                      JudgeCache(sys.argv[3]))
        out = judge.score_many([JudgeRequest(c, "ckpt-1", OPENVE, text=f"Case id {c}. Instruction: recolor the car",
                                             images=[("Edited frame", np.zeros((32, 48, 3), np.uint8))])
                                for c in cases])
        print(json.dumps([getattr(r, "scores", str(r)) for r in out]))
    """)
    cases = list(table)
    with run_fake_openai(score_table(table)) as fake:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, fake.base_url, fake.api_key, str(path), *part],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for part in (cases[:4], cases[4:])
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        assert fake.calls == 8
        third = Judge(make_client(fake), JudgeCache(path)).score_many(_requests(table))
        assert fake.calls == 8
    assert json.loads(outputs[0][0]) + json.loads(outputs[1][0]) == list(table.values())
    assert [s.scores for s in third] == list(table.values()) and all(s.cached for s in third)


def test_dagster_resource_builds_the_judge_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JudgeResource.from_env reads KIWI_JUDGE_* (the key stays out of resource config), caches under KIWI_HOME,
    and reports itself disabled, with a clear error, when no endpoint is set."""
    from kiwi_platform.resources.judge import JudgeResource

    off = JudgeResource.from_env({"KIWI_HOME": str(tmp_path)})
    assert off.enabled is False and off.cache_path == str(tmp_path / "judge-cache.sqlite")
    with pytest.raises(JudgeError, match="KIWI_JUDGE_BASE_URL") as info:
        off.judge()
    assert info.value.code == "config"
    table = _table(2)
    with run_fake_openai(score_table(table), api_key="env-key") as fake:
        env = {
            "KIWI_HOME": str(tmp_path),
            "KIWI_JUDGE_BASE_URL": fake.base_url,
            "KIWI_JUDGE_MODEL": "m",
            "KIWI_JUDGE_MAX_CONCURRENCY": "2",
            "KIWI_JUDGE_API_KEY": "env-key",
        }
        monkeypatch.setenv("KIWI_JUDGE_API_KEY", "env-key")
        resource = JudgeResource.from_env(env)
        assert resource.enabled and resource.max_concurrency == 2 and resource.api_key == ""
        out = resource.judge().score_many(_requests(table))
    assert [s.scores for s in out] == list(table.values())
    assert (tmp_path / "judge-cache.sqlite").is_file() and fake.requests[0].authorization == "Bearer env-key"
