"""Judge failures as values a caller can print, store or count: one line, a reason code, the HTTP status.

Why two codes: `code` is the kind of failure (what to do about it), `reason` the short classified
cause that is safe to store in results (`http_401`, `timeout`, `malformed_answer`, ...). Neither
ever holds text from the server: an error body may echo the request, key included. Every message
goes through `redact` on the way in, so printing or storing a `JudgeError` cannot leak the key.
"""

from __future__ import annotations

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.judge.redact import redact

# Codes that no retry and no other case can fix: the step stops with the one-line message.
FATAL_CODES = frozenset({"config", "auth"})

_DEFAULT_REASONS = {
    "config": "config",
    "auth": "auth",
    "bad_request": "bad_request",
    "rate_limited": "http_429",
    "server_error": "server_error",
    "timeout": "timeout",
    "connection": "connection_failed",
    "malformed": "malformed_answer",
    "input": "input_error",
    "internal": "internal_error",
}


class JudgeError(KiwiUserError):
    """The judge could not produce a score for a request.

    Why a `KiwiUserError`: most causes (wrong key, wrong URL, a model that cannot follow the rubric,
    an endpoint that is down) are fixed by the user, so the CLI prints the one-line message.
    `code` is one of: config, auth, bad_request, rate_limited, server_error, timeout, connection,
    malformed, input, internal. `reason` is the stored cause (`http_<status>` for HTTP errors).
    `status` is the last HTTP status seen (None if no response came). `fatal` errors (config, auth)
    mean every further request would fail the same way.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "judge_error",
        status: int | None = None,
        attempts: int = 0,
        case_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(redact(" ".join(str(message).split())), code=code, exit_code=3)
        self.status = status
        self.attempts = attempts
        self.case_id = case_id
        self.reason = reason or (f"http_{status}" if status and status != 200 else _DEFAULT_REASONS.get(code, code))

    @property
    def fatal(self) -> bool:
        """True when no retry or other case can succeed (bad key, wrong URL or model, refused transport)."""
        return self.code in FATAL_CODES

    def for_case(self, case_id: str) -> JudgeError:
        """The same error, tagged with the case it belongs to (for batch results)."""
        return JudgeError(
            self.message,
            code=self.code,
            status=self.status,
            attempts=self.attempts,
            case_id=case_id,
            reason=self.reason,
        )


class MalformedJudgeAnswer(JudgeError):
    """The endpoint answered, but not with a valid score object: worth asking again, a few times.

    `answer` (the model's text) is shown back to the model on the retry only; it is never stored.
    """

    def __init__(self, message: str, *, answer: str = "") -> None:
        super().__init__(message, code="malformed", reason="malformed_answer")
        self.answer = answer
