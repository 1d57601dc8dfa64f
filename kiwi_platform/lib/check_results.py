"""Asset-check results: a Great Expectations outcome as a check result, and the failed blocking checks.

`failed_blocking_checks` asks the Dagster instance for the latest evaluation of every blocking
check in the code location, so promotion sees checks of any run, not just its own.
"""

from __future__ import annotations

import dagster as dg

from kiwi_platform.lib.expectations import ValidationOutcome


def gx_check_result(outcome: ValidationOutcome, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.success,
        metadata={
            "rows": outcome.row_count,
            "failed": len(outcome.failed()),
            "report": dg.MetadataValue.md(outcome.to_markdown()),
            **metadata,
        },
    )


def failed_blocking_checks(instance: dg.DagsterInstance, limit: int = 20_000) -> list[str]:
    """Blocking checks whose latest evaluation (per check and partition) failed, across every run.

    Read from the instance's check-evaluation events (newest first, the latest `limit` of them), so
    the answer covers the whole code location whatever subset the asking run executes.
    """
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=limit, ascending=False
    )
    latest: dict[tuple[str, str, str | None], dg.AssetCheckEvaluation] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.partition)
        latest.setdefault(key, evaluation)  # newest first
    failed = [key for key, ev in latest.items() if ev.blocking and not ev.passed]
    return [f"{asset}:{check}[{partition or '-'}]" for asset, check, partition in sorted(failed, key=str)]
