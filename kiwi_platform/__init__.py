"""Kiwi Platform: the Dagster asset graph that produces Kiwi-Edit models (see README and docs/).

One process default is set here, before anything can load Arrow: Arrow allocates from the system
allocator (`ARROW_DEFAULT_MEMORY_POOL=system`) unless the environment already chose a pool. Why:
Arrow's bundled mimalloc keeps what a parquet read or a Ray Data block freed; reading a 4,000-row
table left ~5 KB of resident memory per row against ~1.6 KB with the system allocator, and that
made every per-pair stage's peak grow with the batch (benchmarks/measured/memory_2026-12-02b.md).
Arrow reads the variable once, when it loads, so it has to be set before the first `pyarrow`
import; processes this one starts (Dagster runs, local Ray workers) inherit it.
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
