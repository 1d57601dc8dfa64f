"""A small client for an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, LM Studio...).

Why our own client over an SDK: we need exactly one call (`POST {base_url}/chat/completions` with
text and `image_url` parts), with retry rules that fit judging: 429/5xx/timeouts/dropped connections
are retried with exponential backoff and jitter (honouring `Retry-After`); 400/401/403/404 are not,
since asking again cannot fix a bad key or a wrong model name; and an answer that does not parse
is asked again a few times, telling the model what was wrong. `max_concurrency` bounds in-flight
requests across all threads, so a large batch does not trip the provider's rate limit.

Configuration comes from arguments or the environment: KIWI_JUDGE_BASE_URL (e.g.
`https://api.openai.com/v1` or `http://localhost:8000/v1`), KIWI_JUDGE_MODEL, KIWI_JUDGE_API_KEY
(optional for local servers).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests

from kiwi_platform.judge.errors import JudgeError, MalformedJudgeAnswer
from kiwi_platform.judge.media import MediaLike, to_data_urls

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

ENV_BASE_URL = "KIWI_JUDGE_BASE_URL"
ENV_MODEL = "KIWI_JUDGE_MODEL"
ENV_API_KEY = "KIWI_JUDGE_API_KEY"

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        if message:
            return str(message)
    except ValueError:
        pass
    return (resp.text or resp.reason or "").strip()[:200] or "no message"


def _content_of(resp: requests.Response) -> str:
    """`choices[0].message.content` (joined if the server sends content parts), else malformed."""
    try:
        message = resp.json()["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise MalformedJudgeAnswer(f"response is not a chat completion: {resp.text[:120]!r}") from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise MalformedJudgeAnswer(f"empty answer{f' (refusal: {refusal})' if refusal else ''}")
    return content


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
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY, "")
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
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._local = threading.local()
        self._rng = random.Random()

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:  # never print the key
        return f"JudgeClient(model={self.model!r}, endpoint={self.endpoint!r}, max_concurrency={self.max_concurrency})"

    # -- request building -------------------------------------------------------------------
    def image_parts(self, item: MediaLike) -> list[dict[str, Any]]:
        """`image_url` content parts for an image (one) or a video (sampled frames)."""
        urls = to_data_urls(item, max_side=self.max_side, video_frames=self.video_frames, quality=self.jpeg_quality)
        return [{"type": "image_url", "image_url": {"url": url}} for url in urls]

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = session
        return session

    def _delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        base = min(self.backoff_s * (2**retry), self.max_backoff_s)
        return base * self._rng.uniform(0.5, 1.5)

    def _fail(self, message: str, *, code: str, status: int | None, attempts: int) -> JudgeError:
        return JudgeError(
            f"judge {self.model} at {self.endpoint}: {message}", code=code, status=status, attempts=attempts
        )

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
            body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0, **self.extra_body}
            if self.max_tokens is not None:
                body["max_tokens"] = self.max_tokens
            status, retry_after = None, None
            try:
                with self._slots:
                    resp = self._session().post(self.endpoint, json=body, timeout=self.timeout_s)
                status = resp.status_code
                if status == 200:
                    answer = _content_of(resp)
                    return parse(answer)
                if status not in RETRY_STATUSES:
                    code = {401: "auth", 403: "auth"}.get(status, "bad_request")
                    raise self._fail(
                        f"HTTP {status}: {_error_text(resp)} (not retried)", code=code, status=status, attempts=attempts
                    )
                problem = f"HTTP {status}: {_error_text(resp)}"
                code = "rate_limited" if status == 429 else "server_error"
                retry_after = _retry_after_s(resp.headers.get("Retry-After"))
            except MalformedJudgeAnswer as exc:
                malformed += 1
                if malformed > self.max_malformed_retries:
                    raise self._fail(
                        f"{malformed} malformed answers in a row; last: {exc.message}",
                        code="malformed",
                        status=status,
                        attempts=attempts,
                    ) from None
                log.warning("judge answer malformed (%s); asking again", exc.message)
                if exc.answer:  # show the model its answer and what was wrong with it
                    messages = messages[:2] + [
                        {"role": "assistant", "content": exc.answer},
                        {
                            "role": "user",
                            "content": f"That answer was invalid: {exc.message}. "
                            "Reply again with only the JSON object, in the required format.",
                        },
                    ]
                continue
            except requests.Timeout:
                problem, code = f"no answer within {self.timeout_s:g} s", "timeout"
            except requests.ConnectionError as exc:
                problem, code = f"connection failed ({type(exc).__name__})", "connection"
            if retries >= self.max_retries:
                raise self._fail(
                    f"gave up after {attempts} attempts; last: {problem}", code=code, status=status, attempts=attempts
                )
            delay = self._delay(retries, retry_after)
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
