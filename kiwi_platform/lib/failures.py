"""Turn a user-fixable error into a Dagster step failure: the UI shows one line, not a traceback."""

from __future__ import annotations

import dagster as dg

from kiwi_platform.errors import KiwiUserError


def user_failure(exc: KiwiUserError) -> dg.Failure:
    return dg.Failure(description=str(exc), metadata={"reason": exc.code})
