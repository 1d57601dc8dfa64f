"""Endpoint rules for the judge client: which URLs and keys are acceptable, and what an HTTP failure means.

Why here and not in the client: these are the security and configuration decisions (refuse to send
a key over plain http to another machine, never keep a server's error text, tell a bad key from a
down server), kept apart from the retry loop so they can be read and tested on their own.

Classification of a failed call (`Failure`): `fatal` ones (401, 403, 404, 429 insufficient_quota,
redirects, an endpoint unreachable on first contact, TLS errors) mean no retry and no other case
can succeed; `retry` ones (408, 409, 425, 429, 5xx, timeouts, a dropped connection after the
endpoint has answered) are asked again with backoff; the rest (400, 413, 422...) fail that case only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from kiwi_platform.judge.errors import FATAL_CODES, JudgeError
from kiwi_platform.judge.redact import register_secret, safe_url

ENV_BASE_URL = "KIWI_JUDGE_BASE_URL"
ENV_MODEL = "KIWI_JUDGE_MODEL"
ENV_API_KEY = "KIWI_JUDGE_API_KEY"
ENV_ALLOW_INSECURE_HTTP = "KIWI_JUDGE_ALLOW_INSECURE_HTTP"

RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
_TOKEN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def is_loopback(host: str | None) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, has_key: bool, allow_insecure_http: bool) -> str:
    """The base URL without a trailing slash, or a one-line config error.

    Refuses a URL that is not http(s) with a host, and plain http to a non-loopback host when a key
    would be sent (anyone on the path could read it) unless `allow_insecure_http` is set.
    """
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in {"http", "https"} or not host:
        raise JudgeError(
            f"{ENV_BASE_URL} must be an http(s) URL such as https://api.openai.com/v1, got {safe_url(base_url)!r}",
            code="config",
            reason="bad_base_url",
        )
    register_secret(parts.password)
    if parts.scheme == "http" and has_key and not is_loopback(host) and not allow_insecure_http:
        raise JudgeError(
            f"refusing to send the judge API key over plain http to {host}: use https, or set "
            f"{ENV_ALLOW_INSECURE_HTTP}=1 (allow_insecure_http) for a trusted network",
            code="config",
            reason="insecure_http",
        )
    return base_url.rstrip("/")


def check_api_key(api_key: str) -> str:
    """The key without surrounding whitespace; a key with spaces or control characters is refused (not shown)."""
    key = (api_key or "").strip()
    if key and (any(ch.isspace() or not ch.isprintable() for ch in key) or not key.isascii()):
        raise JudgeError(
            f"{ENV_API_KEY} contains spaces, control or non-ASCII characters; set it to the key alone",
            code="config",
            reason="bad_api_key",
        )
    register_secret(key)
    return key


@dataclass(frozen=True)
class Failure:
    """A classified failed call: `code`/`reason` as in `JudgeError`, a one-line `message` of our own words."""

    code: str
    reason: str
    message: str
    retry: bool = False

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


def _error_kind(resp: requests.Response) -> str:
    """The OpenAI-style `error.code` or `error.type` when it is a short token (never free text)."""
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(err, dict):
        return ""
    for value in (err.get("code"), err.get("type")):
        if isinstance(value, str) and _TOKEN.match(value):
            return value
    return ""


def classify_status(resp: requests.Response, model: str) -> Failure:
    """What a non-200 response means; uses only the status and the error's code token, not its text."""
    status, kind = resp.status_code, _error_kind(resp)
    label = f"HTTP {status}" + (f" {kind}" if kind else "")
    if 300 <= status < 400:
        return Failure(
            "config", f"http_{status}", f"the endpoint redirects ({label}); set {ENV_BASE_URL} to the final URL"
        )
    if status == 401:
        return Failure("auth", "http_401", f"the endpoint rejected the API key ({label}); check {ENV_API_KEY}")
    if status == 403:
        return Failure(
            "auth", "http_403", f"the API key may not use this endpoint or model ({label}); check {ENV_API_KEY}"
        )
    if status == 404 and "model" in kind:
        return Failure("config", "model_not_found", f"model {model} is not served there ({label}); check {ENV_MODEL}")
    if status == 404:
        return Failure(
            "config",
            "http_404",
            f"no chat-completions endpoint there ({label}); check {ENV_BASE_URL} (it usually ends in /v1)",
        )
    if status == 429 and kind == "insufficient_quota":
        return Failure("auth", "insufficient_quota", f"the API key's account has no quota left ({label})")
    if status in RETRY_STATUSES or status >= 500:
        return Failure("rate_limited" if status == 429 else "server_error", f"http_{status}", label, retry=True)
    return Failure("bad_request", f"http_{status}", f"the endpoint refused the request ({label}, not retried)")


def connection_cause(exc: requests.RequestException) -> str:
    """A short cause for a failed connection, from the exception's type and wording (never its full text)."""
    text = str(exc).lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake or certificate failed"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text or "resolve" in text:
        return "host name not found"
    return type(exc).__name__
