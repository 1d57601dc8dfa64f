"""A small client for an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, LM Studio...).

Why our own client over an SDK: we need exactly one call (`POST {base_url}/chat/completions` with
text and `image_url` parts), with retry rules that fit judging: 429/5xx/timeouts are retried with
exponential backoff and jitter (honouring `Retry-After`); a bad key, a wrong URL or model name
(401/403/404, an endpoint unreachable on first contact) is never retried, since asking again cannot
fix it: the first such answer stops this client for good (`JudgeError.fatal`), and every later call
fails at once without a request. Until the endpoint has answered once, requests go one at a time,
so a misconfigured judge costs one request, not one per case. An answer that does not parse is
asked again a few times, telling the model what was wrong. `max_concurrency` bounds in-flight
requests across all threads. Rules for URLs, keys and statuses: `kiwi_platform.judge.endpoint`;
sending one request and the fatal stop: `kiwi_platform.judge.transport`; the request body and
answer format: `kiwi_platform.judge.chat_format`; the wait between retries: `kiwi_platform.judge.backoff`.

Secrets: the key is registered for redaction (`kiwi_platform.judge.redact`), errors carry our own
words plus a classified reason, never the server's error text, and the key is only sent over
https or to a loopback host unless `allow_insecure_http` is set.

Configuration comes from arguments or the environment: KIWI_JUDGE_BASE_URL (e.g.
`https://api.openai.com/v1` or `http://localhost:8000/v1`), KIWI_JUDGE_MODEL, KIWI_JUDGE_API_KEY
(optional for local servers), KIWI_JUDGE_ALLOW_INSECURE_HTTP.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from kiwi_platform.judge.backoff import backoff_delay, retry_after_s
from kiwi_platform.judge.chat_format import ask_again, chat_body, content_of, image_url_parts
from kiwi_platform.judge.endpoint import (
    ENV_ALLOW_INSECURE_HTTP,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    check_api_key,
    check_base_url,
    classify_status,
    connection_cause,
    is_loopback,
    truthy,
)
from kiwi_platform.judge.errors import JudgeError, MalformedJudgeAnswer
from kiwi_platform.judge.media import MediaLike
from kiwi_platform.judge.redact import redacting_logger, safe_url
from kiwi_platform.judge.transport import ChatTransport

log = redacting_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ENV_ALLOW_INSECURE_HTTP", "ENV_API_KEY", "ENV_BASE_URL", "ENV_MODEL", "JudgeClient"]


class JudgeClient:
    """Sends judge prompts to one model at one endpoint and returns parsed answers."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        max_malformed_retries: int = 2,
        max_concurrency: int = 4,
        max_side: int = 512,
        video_frames: int = 4,
        jpeg_quality: int = 85,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        allow_insecure_http: bool | None = None,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_BASE_URL, "")
        model = model or os.environ.get(ENV_MODEL, "")
        if not base_url:
            raise JudgeError(
                f"judge endpoint not configured: set {ENV_BASE_URL} (e.g. http://localhost:8000/v1)", code="config"
            )
        if not model:
            raise JudgeError(f"judge model not configured: set {ENV_MODEL}", code="config")
        if max_concurrency < 1 or max_retries < 0 or max_malformed_retries < 0 or timeout_s <= 0:
            raise JudgeError(
                "judge settings out of range: need max_concurrency >= 1, retries >= 0, timeout > 0", code="config"
            )
        self.api_key = check_api_key(api_key if api_key is not None else os.environ.get(ENV_API_KEY, ""))
        if allow_insecure_http is None:
            allow_insecure_http = truthy(os.environ.get(ENV_ALLOW_INSECURE_HTTP))
        self.base_url = check_base_url(base_url, bool(self.api_key), allow_insecure_http)
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_malformed_retries = max_malformed_retries
        self.max_concurrency = max_concurrency
        self.max_side = max_side
        self.video_frames = video_frames
        self.jpeg_quality = jpeg_quality
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._transport = ChatTransport(
            self.endpoint, model, self.api_key, timeout_s=timeout_s, max_concurrency=max_concurrency
        )
        self._rng = random.Random()
        if self.api_key and self.base_url.startswith("http://") and not is_loopback(self._host):
            log.warning("the judge API key is sent over plain http to %s (allow_insecure_http is set)", self._host)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def _host(self) -> str:
        return requests.utils.urlparse(self.base_url).hostname or ""

    def __repr__(self) -> str:  # never print the key
        return (
            f"JudgeClient(model={self.model!r}, endpoint={safe_url(self.endpoint)!r}, "
            f"max_concurrency={self.max_concurrency})"
        )

    @property
    def failed_for_good(self) -> JudgeError | None:
        """The fatal error that stopped this client (bad key, URL or model), if any."""
        return self._transport.failed_for_good

    # -- request building -------------------------------------------------------------------
    def image_parts(self, item: MediaLike) -> list[dict[str, Any]]:
        """`image_url` content parts for an image (one) or a video (sampled frames)."""
        return image_url_parts(item, max_side=self.max_side, video_frames=self.video_frames, quality=self.jpeg_quality)

    # -- the call -----------------------------------------------------------------------------
    def chat(self, system: str, content: list[dict[str, Any]], parse: Callable[[str], T]) -> T:
        """Ask once (retrying as described in the module docstring) and return `parse(answer)`.

        `content` is the user message's parts (text and image_url). `parse` raises
        `MalformedJudgeAnswer` to have the model asked again, up to `max_malformed_retries` times.
        Raises `JudgeError` with a reason code when no valid answer can be had.
        """
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        retries = malformed = attempts = 0
        while True:
            attempts += 1
            body = chat_body(self.model, messages, self.extra_body, self.max_tokens)
            status, retry_after, reason = None, None, None
            try:
                resp = self._transport.post(body, attempts)
                status = resp.status_code
                if status == 200:
                    return parse(content_of(resp))
                failure = classify_status(resp, self.model)
                if not failure.retry:
                    raise self._transport.fail(
                        failure.message, code=failure.code, status=status, attempts=attempts, reason=failure.reason
                    )
                problem, code, reason = failure.message, failure.code, failure.reason
                retry_after = retry_after_s(resp.headers.get("Retry-After"))
            except MalformedJudgeAnswer as exc:
                malformed += 1
                if malformed > self.max_malformed_retries:
                    raise self._transport.fail(
                        f"{malformed} malformed answers in a row; last: {exc.message}",
                        code="malformed",
                        status=status,
                        attempts=attempts,
                        reason="malformed_answer",
                    ) from None
                log.warning("judge answer malformed (%s); asking again", exc.message)
                if exc.answer:  # show the model its answer and what was wrong with it
                    messages = ask_again(messages, exc)
                continue
            except requests.Timeout:
                problem, code = f"no answer within {self.timeout_s:g} s", "timeout"
            except requests.RequestException as exc:  # a dropped connection after the endpoint answered before
                problem, code = f"connection failed ({connection_cause(exc)})", "connection"
            if retries >= self.max_retries:
                raise self._transport.fail(
                    f"gave up after {attempts} attempts; last: {problem}",
                    code=code,
                    status=status,
                    attempts=attempts,
                    reason=reason,
                )
            delay = backoff_delay(
                retries, retry_after, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s, rng=self._rng
            )
            retries += 1
            log.warning("judge call failed (%s); retry %d/%d in %.2f s", problem, retries, self.max_retries, delay)
            time.sleep(delay)

    def map(self, fn: Callable[[R], T], items: Iterable[R]) -> list[T]:
        """`fn` over `items` on a pool of `max_concurrency` threads, results in input order."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items)), thread_name_prefix="judge") as pool:
            return list(pool.map(fn, items))
