"""Retraining on a schedule and on new data. Both are off by default: turn them on in the UI
(Automation tab) or with `dagster schedule start weekly_retraining` / `dagster sensor start
retrain_on_new_quadruplets` once a team wants unattended runs.
"""

from __future__ import annotations

import dagster as dg

RETRAIN_SELECTION = dg.AssetSelection.groups("training", "evaluation")
QC_CHECKS = ("quadruplets_valid", "quadruplet_files_intact")

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


def passed_checks(instance: dg.DagsterInstance, run_id: str, partition: str | None) -> bool:
    """True when every blocking QC check of `quadruplets` ran in `run_id` for `partition` and passed."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    for name in QC_CHECKS:
        key = dg.AssetCheckKey(dg.AssetKey("quadruplets"), name)
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        mine = [r for r in records if r.run_id == run_id and r.partition == partition]
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
    result = context.instance.fetch_materializations(dg.AssetKey("quadruplets"), limit=100, cursor=context.cursor, ascending=True)
    requests = []
    for record in result.records:
        mat = record.asset_materialization
        if mat is not None and int((mat.metadata.get("accepted") or dg.MetadataValue.int(0)).value) > 0 and passed_checks(
            context.instance, record.run_id, mat.partition
        ):
            requests.append(dg.RunRequest(run_key=f"quadruplets-{record.storage_id}", tags={"kiwi/new_batch": mat.partition or ""}))
    if result.cursor:
        context.update_cursor(result.cursor)
    if not requests:
        return dg.SkipReason("no new quadruplet batch passed its checks")
    return requests[-1:]  # one retraining covers every new batch
