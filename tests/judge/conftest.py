"""Judge tests: a fast client factory pointed at the local fake OpenAI server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kiwi_platform.judge import JudgeClient
from tests.fakes.openai_server import FakeOpenAI

JUDGE_MODEL = "fake-vlm-judge"


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch) -> Callable[..., JudgeClient]:
    """A client for a fake server with millisecond backoff, so retry tests run fast."""
    for var in ("KIWI_JUDGE_BASE_URL", "KIWI_JUDGE_MODEL", "KIWI_JUDGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    def make(fake: FakeOpenAI, **kw: Any) -> JudgeClient:
        settings: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 3, "backoff_s": 0.01, "max_concurrency": 4}
        settings.update(kw)
        return JudgeClient(fake.base_url, JUDGE_MODEL, fake.api_key, **settings)

    return make
