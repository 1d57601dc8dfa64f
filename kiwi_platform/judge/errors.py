"""Judge failures as values a caller can print, store or count: one line, a reason code, the HTTP status."""

from __future__ import annotations

from kiwi_platform.errors import KiwiUserError


class JudgeError(KiwiUserError):
    """The judge could not produce a score for a request.

    Why a `KiwiUserError`: most causes (wrong key, wrong URL, a model that cannot follow the rubric,
    an endpoint that is down) are fixed by the user, so the CLI prints the one-line message.
    `code` is one of: config, auth, bad_request, rate_limited, server_error, timeout, connection,
    malformed, input, internal. `status` is the last HTTP status seen (None if no response came).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "judge_error",
        status: int | None = None,
        attempts: int = 0,
        case_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, exit_code=3)
        self.status = status
        self.attempts = attempts
        self.case_id = case_id

    def for_case(self, case_id: str) -> JudgeError:
        """The same error, tagged with the case it belongs to (for batch results)."""
        return JudgeError(self.message, code=self.code, status=self.status, attempts=self.attempts, case_id=case_id)


class MalformedJudgeAnswer(JudgeError):
    """The endpoint answered, but not with a valid score object: worth asking again, a few times."""

    def __init__(self, message: str, *, answer: str = "") -> None:
        super().__init__(message, code="malformed")
        self.answer = answer
