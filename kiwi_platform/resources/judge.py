"""The judge as a Dagster resource: endpoint settings from the environment, one client and cache per run.

Why the API key is not a field by default: resource config is shown in the Dagster UI, so the client
reads KIWI_JUDGE_API_KEY itself at call time unless a key is passed explicitly (tests do).

Environment (read by `JudgeResource.from_env()`; unset ones keep the defaults):
  KIWI_JUDGE_BASE_URL          OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (judge off if unset)
  KIWI_JUDGE_MODEL             model name the endpoint serves
  KIWI_JUDGE_API_KEY           bearer key (read by the client, never copied into config)
  KIWI_JUDGE_TIMEOUT_S         per-request timeout (default 60)
  KIWI_JUDGE_MAX_RETRIES       retries on 429/5xx/timeouts (default 4)
  KIWI_JUDGE_MAX_CONCURRENCY   requests in flight at once (default 4)
  KIWI_JUDGE_CACHE             sqlite cache file (default $KIWI_HOME/judge-cache.sqlite)
  KIWI_JUDGE_ALLOW_INSECURE_HTTP  1 to allow sending the key over plain http to a non-loopback host
                               (refused by default; http to localhost / 127.0.0.1 / ::1 is always allowed)

A bad key, URL or model fails the step with one line (`JudgeError.fatal`) after one request; see
`kiwi_platform.judge.client` for the retry rules and `kiwi_platform.judge.redact` for where the key
may appear (nowhere but the Authorization header).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from kiwi_platform.judge.cache import JudgeCache
from kiwi_platform.judge.client import JudgeClient
from kiwi_platform.judge.errors import JudgeError
from kiwi_platform.judge.judge import Judge

_ENV_FIELDS = {
    "base_url": "KIWI_JUDGE_BASE_URL",
    "model": "KIWI_JUDGE_MODEL",
    "timeout_s": "KIWI_JUDGE_TIMEOUT_S",
    "max_retries": "KIWI_JUDGE_MAX_RETRIES",
    "max_concurrency": "KIWI_JUDGE_MAX_CONCURRENCY",
    "cache_path": "KIWI_JUDGE_CACHE",
    "allow_insecure_http": "KIWI_JUDGE_ALLOW_INSECURE_HTTP",
}


def default_cache_path(environ: dict[str, str] | None = None) -> Path:
    """`$KIWI_HOME/judge-cache.sqlite` (KIWI_HOME defaults to ./.kiwi, as everywhere in the platform)."""
    env = os.environ if environ is None else environ
    home = Path(env["KIWI_HOME"]).expanduser() if env.get("KIWI_HOME") else Path.cwd() / ".kiwi"
    return home / "judge-cache.sqlite"


class JudgeResource(dg.ConfigurableResource):
    """A VLM judge endpoint plus its answer cache. `enabled` is False when no endpoint is configured."""

    base_url: str = ""
    model: str = ""
    api_key: str = ""
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_concurrency: int = 4
    max_side: int = 512
    video_frames: int = 4
    cache_path: str = ""
    allow_insecure_http: bool = False

    _judge: Any = PrivateAttr(default=None)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> JudgeResource:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {name: env[var] for name, var in _ENV_FIELDS.items() if env.get(var)}
        values.setdefault("cache_path", str(default_cache_path(env)))
        return cls(**values)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)

    def client(self) -> JudgeClient:
        if not self.enabled:
            raise JudgeError(
                "the VLM judge is not configured: set KIWI_JUDGE_BASE_URL and KIWI_JUDGE_MODEL", code="config"
            )
        return JudgeClient(
            self.base_url,
            self.model,
            self.api_key or None,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            max_concurrency=self.max_concurrency,
            max_side=self.max_side,
            video_frames=self.video_frames,
            allow_insecure_http=self.allow_insecure_http,
        )

    def judge(self) -> Judge:
        """The configured `Judge` (built once per resource instance), cached at `cache_path` if set."""
        if self._judge is None:
            cache = JudgeCache(self.cache_path) if self.cache_path else None
            self._judge = Judge(self.client(), cache)
        return self._judge
