"""The one way a batch-partitioned asset or check is declared.

Every per-batch stage shares the same partitioning, DVC versioning and user-error handling; this
keeps that opening in one place so asset modules only say what differs (name, group, deps, kinds).
The function's docstring becomes the asset's description in the UI.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from kiwi_platform.lib.failures import user_errors
from kiwi_platform.partitions import batches


def batch_asset(*, group_name: str, kinds: set[str], deps: list | None = None) -> Callable:
    """`@dg.asset` partitioned by batch, versioned with DVC, KiwiUserError -> one-line failure."""

    def decorate(fn: Callable) -> dg.AssetsDefinition:
        return dg.asset(
            partitions_def=batches,
            deps=deps,
            group_name=group_name,
            kinds={*kinds, "dvc"},
        )(user_errors(fn))

    return decorate


def batch_check(asset, *, blocking: bool = True) -> Callable:
    """`@dg.asset_check` on a batch asset; blocking by default, so a failure stops downstream steps."""

    def decorate(fn: Callable) -> dg.AssetChecksDefinition:
        return dg.asset_check(asset=asset, blocking=blocking, partitions_def=batches)(user_errors(fn))

    return decorate
