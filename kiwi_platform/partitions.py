"""Batches of edit pairs are dynamic partitions: `kiwi ingest --batch NAME` adds one."""

import dagster as dg

batches = dg.DynamicPartitionsDefinition(name="batch")
