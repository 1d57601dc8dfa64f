"""Turn a user-fixable error into a Dagster step failure: the UI shows one line, not a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from kiwi_platform.errors import KiwiUserError

F = TypeVar("F", bound=Callable)


def user_failure(exc: KiwiUserError) -> dg.Failure:
    return dg.Failure(description=str(exc), metadata={"reason": exc.code})


def user_errors(fn: F) -> F:
    """Wrap an asset or check body: a KiwiUserError anywhere in it fails the step with its one line.

    Applied under `@dg.asset` (the signature is kept, so Dagster still sees context, config and
    resources).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KiwiUserError as exc:
            raise user_failure(exc) from None

    return wrapper  # type: ignore[return-value]
