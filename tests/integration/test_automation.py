"""Retraining automation: off by default, and the sensor fires only on a new batch that passed QC."""

from __future__ import annotations

import dagster as dg

from kiwi_platform.automation import retrain_on_new_quadruplets, weekly_retraining
from kiwi_platform.runner import materialize
from tests.integration.conftest import SMALL_RUN_CONFIG, add_batch


def test_schedule_and_sensor_are_off_by_default():
    """Nobody gets surprise GPU runs: both automations start STOPPED until a team turns them on."""
    assert weekly_retraining.default_status == dg.DefaultScheduleStatus.STOPPED
    assert retrain_on_new_quadruplets.default_status == dg.DefaultSensorStatus.STOPPED
    assert weekly_retraining.cron_schedule == "0 3 * * 1"


def test_sensor_requests_retraining_once_per_new_checked_batch(platform, small_synth):
    """A quadruplet batch whose blocking checks passed triggers one retraining request; evaluating
    again with the advanced cursor requests nothing more."""
    defs, resources, instance = platform
    with dg.build_sensor_context(instance=instance) as context:
        assert isinstance(retrain_on_new_quadruplets(context), dg.SkipReason)  # nothing materialized yet
    add_batch(platform, "auto", small_synth)
    [outcome] = materialize("group:ingestion or group:refvie", ["auto"], defs=defs, run_config=SMALL_RUN_CONFIG)
    assert outcome.ok, outcome.errors
    with dg.build_sensor_context(instance=instance) as context:
        requests = retrain_on_new_quadruplets(context)
        assert [r.tags["kiwi/new_batch"] for r in requests] == ["auto"]
        cursor = context.cursor
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        assert isinstance(retrain_on_new_quadruplets(context), dg.SkipReason)
