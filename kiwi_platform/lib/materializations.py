"""Read what an upstream asset recorded in its latest materialization.

Unpartitioned stages (training, evaluation, promotion) receive their upstream's results this way:
through the Dagster instance, so the UI and lineage show the dependency, never through side files.
"""

from __future__ import annotations

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    """The plain values of `asset`'s latest materialization metadata; a one-line failure if there is none."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        raise dg.Failure(description=f"{asset} has not been materialized yet; materialize it first")
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}
