"""The engine for per-row work: in this process, or Ray Data (local or a cluster named by KIWI_RAY_ADDRESS).

See `rows.py` for the contract and docs/ray.md for when each back end is used.
"""

from kiwi_platform.engine.rows import ActorPool, EngineSettings, Progress, Rejection, RowOutcome, map_rows, stream_rows

__all__ = ["ActorPool", "EngineSettings", "Progress", "Rejection", "RowOutcome", "map_rows", "stream_rows"]
