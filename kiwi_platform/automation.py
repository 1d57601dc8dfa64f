"""Retraining on a schedule and on new data. Both are off by default: turn them on in the UI
(Automation tab) or with `dagster schedule start weekly_retraining` / `dagster sensor start
retrain_on_new_quadruplets` once a team wants unattended runs.
"""

from __future__ import annotations

import dagster as dg

RETRAIN_SELECTION = dg.AssetSelection.groups("training", "evaluation")
QC_CHECKS = ("quadruplets_valid", "quadruplet_files_intact")
#: Blocking checks of the batch assets quadruplets are built from (assets/ingestion.py). A blocking
#: check stops downstream steps only inside its own run: `group:refvie` run on its own later still
#: builds quadruplets from a batch whose ingestion check failed, so the sensor looks at them too.
UPSTREAM_CHECKS = (
    ("raw_edit_pairs", "raw_rows_accounted"),
    ("raw_edit_pairs", "raw_pairs_valid"),
    ("normalized_clips", "normalized_clips_valid"),
)

retraining_job = dg.define_asset_job(
    "retrain_and_evaluate",
    selection=RETRAIN_SELECTION,
    description="Training manifests from every batch, the three stages, benchmarks and promotion.",
    tags={"kiwi/trigger": "automation"},
)

weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=retraining_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain, evaluate and (if the gates pass) promote every Monday at 03:00 UTC.",
)


def _check_history(instance: dg.DagsterInstance, asset: str, name: str, partition: str | None) -> list:
    """Recent executions of one check on one batch, newest first."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    return [
        r
        for r in instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        if r.partition == partition
    ]


def _when(record) -> float:
    """When a check execution was evaluated (planned, if it has not finished); create_timestamp is whole seconds."""
    return record.event.timestamp if record.event is not None else record.create_timestamp


def passed_checks(
    instance: dg.DagsterInstance, run_id: str, partition: str | None, built_at: float | None = None
) -> bool:
    """True when every blocking QC check of `quadruplets` ran in `run_id` for `partition` and passed, and
    the ingestion checks of that batch (UPSTREAM_CHECKS) passed in their latest execution before
    `built_at` (when the quadruplets were materialized), i.e. on the data they were built from."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    for name in QC_CHECKS:
        mine = [r for r in _check_history(instance, "quadruplets", name, partition) if r.run_id == run_id]
        if not mine or mine[0].status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            return False
    for asset, name in UPSTREAM_CHECKS:
        mine = [r for r in _check_history(instance, asset, name, partition) if built_at is None or _when(r) <= built_at]
        if not mine or mine[0].status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            return False
    return True


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts training when a new quadruplet batch has passed its blocking checks.",
)
def retrain_on_new_quadruplets(context: dg.SensorEvaluationContext):
    result = context.instance.fetch_materializations(
        dg.AssetKey("quadruplets"), limit=100, cursor=context.cursor, ascending=True
    )
    requests = []
    for record in result.records:
        mat = record.asset_materialization
        if (
            mat is not None
            and int((mat.metadata.get("accepted") or dg.MetadataValue.int(0)).value) > 0
            and passed_checks(context.instance, record.run_id, mat.partition, record.timestamp)
        ):
            requests.append(
                dg.RunRequest(run_key=f"quadruplets-{record.storage_id}", tags={"kiwi/new_batch": mat.partition or ""})
            )
    if result.cursor:
        context.update_cursor(result.cursor)
    if not requests:
        return dg.SkipReason("no new quadruplet batch passed its checks")
    return requests[-1:]  # one retraining covers every new batch
