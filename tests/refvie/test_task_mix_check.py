"""An empty batch is a warning, not a failure: `quadruplet_task_mix` is non-blocking with severity WARN.

The upstream demo manifests yield no quadruplet (every row quarantined). The run must still
succeed, downstream must not be blocked, and the stored evaluation must carry severity WARN:
the Dagster UI draws a failed WARN check as a warning (and colours a partitioned check's summary
by the latest evaluation's severity), the CLI prints `warn`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from kiwi_platform.env import prepare_environment
from kiwi_platform.resources import build_resources
from kiwi_platform.runner import materialize, register_batch


def test_empty_batch_warns_without_blocking(kiwi_home: Path, demo_dir: Path) -> None:
    """A batch with 0 quadruplets: the run is ok, the check failed as a non-blocking WARN with a one-line reason."""
    settings = prepare_environment()
    from kiwi_platform.definitions import build_definitions

    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    build_resources(settings)["store"].register_batch("empty", demo_dir / "video_demo_training_set.csv")
    register_batch(instance, "empty")
    [outcome] = materialize("group:ingestion or group:refvie", ["empty"], defs=defs)
    assert outcome.ok, outcome.errors
    [check] = [c for c in outcome.checks if c.name == "quadruplet_task_mix"]
    assert not check.passed and not check.blocking
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=50
    )
    [evaluation] = [
        r.event_log_entry.dagster_event.event_specific_data
        for r in records
        if r.event_log_entry.dagster_event.event_specific_data.check_name == "quadruplet_task_mix"
    ]
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.partition == "empty"
    assert evaluation.metadata["samples"].value == 0
    assert evaluation.metadata["status"].value.startswith("warning: this batch yields no training sample")
    instance.dispose()
