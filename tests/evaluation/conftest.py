"""Evaluation tests: a tiny random checkpoint, small held-out synthetic suites and a fake judge endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiwi_platform.evaluation import Suite, build_synthetic_suite, merge_suites
from tests.fakes.openai_server import FakeOpenAI, FakeRequest, Reply, run_fake_openai
from tests.judge.upstream_answers import upstream_answer

SIZE = {"frames": 5, "height": 64, "width": 96}
OPENVE_ANSWER = (5, 4, 3)  # upstream order: instruction compliance, visual quality, detail fidelity; mean 4
REFVIE_ANSWER = (2, 5, 3)  # the judge ignores the prompt's cap rule: capped to 2, 2, 2 in code


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny Kiwi-Edit checkpoint in the released folder layout."""
    from model.build import init_checkpoint

    return Path(init_checkpoint("tiny", tmp_path_factory.mktemp("ckpt") / "tiny", seed=0))


@pytest.fixture(scope="session")
def small_suite(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Suite:
    """Two OpenVE cases (local_add, local_change) and two RefVIE cases (subject, subject), 5 frames at 64x96."""
    base = tmp_path_factory.mktemp("suites")
    openve = build_synthetic_suite("openve", base / "openve", n=2, demo_dir=demo_dir, **SIZE)
    refvie = build_synthetic_suite("refvie", base / "refvie", n=2, seed=7, demo_dir=demo_dir, **SIZE)
    return merge_suites([openve, refvie], base / "all", "small")


def judge_behaviour(req: FakeRequest) -> Reply:
    """Answer like a consistent judge: fixed scores per rubric, a short delay so concurrency is visible."""
    if "Reference Image" in req.system:  # both RefVIE prompts (subject, background) name it; OpenVE's do not
        return upstream_answer(REFVIE_ANSWER, delay_s=0.15)
    return upstream_answer(OPENVE_ANSWER, delay_s=0.15)


@pytest.fixture
def fake_judge_server() -> Iterator[FakeOpenAI]:
    with run_fake_openai(judge_behaviour) as fake:
        yield fake


def make_judge(fake: FakeOpenAI, cache_path: Path, **kw: Any):
    from kiwi_platform.judge import Judge, JudgeCache, JudgeClient

    settings: dict[str, Any] = {"timeout_s": 10.0, "max_retries": 1, "backoff_s": 0.01, "max_concurrency": 2}
    settings.update(kw)
    return Judge(JudgeClient(fake.base_url, "fake-vlm-judge", fake.api_key, **settings), JudgeCache(cache_path))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
