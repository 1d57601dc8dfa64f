"""A Great Expectations outcome as a Dagster check result, with the table people read in the UI."""

from __future__ import annotations

import dagster as dg

from kiwi_platform.lib.expectations import ValidationOutcome


def gx_check_result(outcome: ValidationOutcome, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata={"rows": outcome.row_count, "failed": len(outcome.failed()),
                  "report": dg.MetadataValue.md(outcome.to_markdown()), **metadata},
    )  # fmt: skip
