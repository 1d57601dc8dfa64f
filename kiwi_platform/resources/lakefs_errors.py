"""lakeFS failures as one line: the error type and the HTTP summary every lakeFS call reports.

Why its own module: both the resource (`resources/lakefs.py`) and the raw-originals import
(`resources/lakefs_import.py`) raise it, and users see only this line, never an SDK traceback.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from kiwi_platform.errors import KiwiUserError


class LakeFSError(KiwiUserError):
    """A lakeFS call failed; the message is one line: operation, HTTP status (or network cause), server reason."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()), code="lakefs_error", exit_code=1)


def http_summary(status: int | None, reason: str | None, body: Any) -> str:
    """`HTTP 401 Unauthorized: <server message>` plus a hint for credential errors."""
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message", ""))
    elif isinstance(body, (str, bytes)):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        with contextlib.suppress(ValueError):
            parsed = json.loads(text)
            text = str(parsed.get("message", text)) if isinstance(parsed, dict) else text
        message = text[:200]
    summary = f"HTTP {status} {reason or ''}".strip()
    if message:
        summary += f": {message}"
    if status in (401, 403):
        summary += " (check KIWI_LAKEFS_ACCESS_KEY_ID / KIWI_LAKEFS_SECRET_ACCESS_KEY)"
    return summary
