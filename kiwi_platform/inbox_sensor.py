"""The inbox sensor: each new manifest in `$KIWI_HOME/inbox/` becomes a batch and its ingestion run.

Off by default like the other automation (start it in the UI's Automation tab or with
`dagster sensor start ingest_from_inbox`). What the inbox holds and how batches are named:
`kiwi_platform/ingestion/inbox.py`. Each request carries the manifest in `raw_edit_pairs`' run
config, so the run page shows what was ingested, and a run key per manifest content, so a
manifest is ingested once however often the sensor looks.
"""

from __future__ import annotations

import json
import time

import dagster as dg

from kiwi_platform.ingestion.inbox import inbox_dir, plan_inbox
from kiwi_platform.partitions import batches
from kiwi_platform.resources.store import MediaStore
from kiwi_platform.settings import KiwiSettings

ingest_batch_job = dg.define_asset_job(
    "ingest_batch",
    selection=dg.AssetSelection.groups("ingestion"),
    partitions_def=batches,
    description="Ingest one batch: raw_edit_pairs and normalized_clips with their checks.",
    tags={"kiwi/trigger": "inbox"},
)


@dg.sensor(
    job=ingest_batch_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Registers each new manifest dropped into $KIWI_HOME/inbox (CSV, parquet, or a folder of "
    "parquet chunks) as a batch named after the file, and ingests it.",
)
def ingest_from_inbox(context: dg.SensorEvaluationContext, store: MediaStore):
    inbox = inbox_dir(KiwiSettings.from_env().home)
    plan = plan_inbox(store, inbox, json.loads(context.cursor or "{}"), time.time())
    for line in plan.problems:
        context.log.warning(f"inbox: {line}")
    context.update_cursor(json.dumps(plan.seen, sort_keys=True))
    if not plan.requests:
        return dg.SkipReason(
            f"no new manifest in {inbox}" + (f" ({len(plan.problems)} refused)" if plan.problems else "")
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"inbox-{r.batch}-{r.sha256[:16]}",
                partition_key=r.batch,
                run_config={"ops": {"raw_edit_pairs": {"config": {"manifest": r.spec, "base_path": r.base_path}}}},
                tags={"kiwi/source": "inbox", "kiwi/manifest_sha256": r.sha256},
            )
            for r in plan.requests
        ],
        dynamic_partitions_requests=[batches.build_add_request(sorted({r.batch for r in plan.requests}))],
    )
