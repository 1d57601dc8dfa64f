"""The batch data plane as one resource: tables and files (store), versions (DVC), branches (lakeFS).

Every data asset reads its upstream table from the store and ends by publishing its folder; the
three systems always travel together, so assets take this one resource instead of all three.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import pandas as pd

from kiwi_platform.lib.publish import publish_asset_folder
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore


class BatchData(dg.ConfigurableResource):
    """Store + DVC + lakeFS for batch-partitioned assets."""

    store: MediaStore
    dvc: DvcRepo
    lakefs: LakeFSResource

    def read_table(self, batch: str, asset: str) -> pd.DataFrame:
        """The upstream asset's table for `batch` (a one-line user error when it was never materialized)."""
        return self.store.read_table(batch, asset)

    def publish(
        self,
        context: dg.AssetExecutionContext,
        asset: str,
        table: pd.DataFrame,
        quarantined: Iterable[QuarantineRecord],
        rows_in: int,
        extra_metadata: dict | None = None,
        raw_originals: Iterable[tuple[str, str]] | None = None,
    ) -> dg.MaterializeResult:
        """Write the table and quarantine, version the folder (DVC, lakeFS) and describe it for the UI."""
        return publish_asset_folder(
            context,
            store=self.store,
            dvc=self.dvc,
            lakefs=self.lakefs,
            asset=asset,
            table=table,
            quarantined=quarantined,
            rows_in=rows_in,
            extra_metadata=extra_metadata,
            raw_originals=raw_originals,
        )
