"""How long the judge client waits before asking again: the server's Retry-After, else jittered backoff.

Why a module of its own: the waiting rule (honour `Retry-After`, capped at `max_backoff_s`;
otherwise exponential backoff with +-50% jitter so concurrent callers do not retry in step) is the
one piece of the retry policy that is pure arithmetic, kept apart from the retry loop that uses it.
"""

from __future__ import annotations

import email.utils
import random
import time


def retry_after_s(value: str | None) -> float | None:
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


def backoff_delay(
    retry: int, retry_after: float | None, *, backoff_s: float, max_backoff_s: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number `retry` (0-based)."""
    if retry_after is not None:
        return min(retry_after, max_backoff_s)
    base = min(backoff_s * (2**retry), max_backoff_s)
    return base * rng.uniform(0.5, 1.5)
