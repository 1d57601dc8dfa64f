"""Errors a user can fix: the CLI prints them as one line (`error: ...`) with an exit code, no traceback."""

from __future__ import annotations


class KiwiUserError(Exception):
    """A problem with the user's input or environment (bad path, missing component, bad config).

    `code` is a short machine-readable reason; `exit_code` is what the CLI returns.
    """

    def __init__(self, message: str, *, code: str = "user_error", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
