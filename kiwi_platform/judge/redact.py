"""Keep the judge's API key out of every message, log line, metadata value and artifact.

Why a registry of secrets plus patterns: the configured key is known exactly (each `JudgeClient`
registers it), so it is replaced wherever it appears, even inside a server's echo; the patterns
catch key-shaped text we were never told about (`Bearer ...`, `sk-...`, also OpenAI's half-masked
`sk-abc*****wxyz`, credentials in a URL, `api_key=` query parameters). Every boundary where text
leaves the judge package goes through `redact`: `JudgeError` messages (so exception text, Dagster
failure descriptions and stored error fields), the judge's answer `reason`, and the judge loggers
(`RedactingFilter`).

    register_secret("sk-live-123456")
    redact("HTTP 401: Incorrect API key provided: sk-live-123456")  # "HTTP 401: Incorrect API key provided: ***"
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter "keys" (e.g. "k", "none") would mask ordinary words; they protect nothing anyway

_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+"), r"\1 " + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-*.]{4,}"), MASK),
    (re.compile(r"(?i)\b(api[-_]?key|access[-_]?token|token|key)=[^\s&\"',;]+"), r"\1=" + MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1" + MASK + "@"),
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Redact `secret` from now on, in this process (no-op for empty or very short values)."""
    if secret and len(secret) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(secret)


def redact(text: object, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """`text` as a string with every registered secret, every extra `secrets` and key-shaped tokens masked."""
    out = str(text)
    with _lock:
        known = sorted(_secrets | {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    for secret in known:
        out = out.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def safe_url(url: str) -> str:
    """`url` for display: user:password and the query string dropped (a key can hide in either)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return redact(urlunsplit((parts.scheme, host, parts.path, "", "")))


class RedactingFilter(logging.Filter):
    """A logging filter that formats the record and masks secrets in it (attach to a logger or handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            # a traceback repeats the exception's text verbatim: keep only its redacted one-liner
            record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__}: {redact(record.exc_info[1])})"
            record.exc_info, record.exc_text = None, None
        return True


def redacting_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with a `RedactingFilter` attached (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
