"""Where per-row stages run, as a Dagster resource: in this process, a local Ray, or a Ray cluster.

Why a resource: moving normalizing, grounding, QC or feature encoding from one process to a
KubeRay cluster must be configuration (`KIWI_RAY_ADDRESS`, `KIWI_ENGINE`), never an `if` in an
asset. Assets hand `settings()` to
the stage functions, which pass it to `kiwi_platform.engine.map_rows`.

Environment (read by `EngineResource.from_env()`; unset variables keep the field defaults):
  KIWI_ENGINE          auto (default) | local | ray
  KIWI_RAY_ADDRESS     a Ray cluster: host:port (GCS) or ray://host:port (Ray Client)
  KIWI_RAY_MIN_ROWS    auto uses a local Ray from this many rows per batch (default 64)
  KIWI_RAY_NUM_CPUS    CPUs of the local Ray (default: every core)
"""

from __future__ import annotations

import os
from typing import Literal

import dagster as dg
from pydantic import Field

from kiwi_platform.engine import EngineSettings
from kiwi_platform.errors import KiwiUserError

_ENV_FIELDS = {
    "engine": "KIWI_ENGINE",
    "ray_address": "KIWI_RAY_ADDRESS",
    "ray_min_rows": "KIWI_RAY_MIN_ROWS",
    "num_cpus": "KIWI_RAY_NUM_CPUS",
}


class EngineResource(dg.ConfigurableResource):
    """The engine for per-row stages (normalized_clips, edit_regions, reference_images, quadruplets,
    training_features); see docs/ray.md."""

    engine: Literal["auto", "local", "ray"] = Field(
        "auto",
        description="auto (default): Ray when ray_address is set or the batch has at least ray_min_rows rows, "
        "else a plain loop in the step's process. local: always the loop. ray: always Ray Data.",
    )
    ray_address: str = Field(
        "",
        description="KIWI_RAY_ADDRESS: the Ray cluster to run on, host:port (GCS) or ray://host:port (Ray "
        "Client). Empty (default): a Ray started in the step's process, sized to this machine.",
    )
    ray_min_rows: int = Field(
        64,
        ge=1,
        description="With engine=auto and no ray_address: batches with at least this many rows use a local Ray "
        "(its start-up costs 10-30 s on 2 busy cores); smaller ones run in-process. Default 64.",
    )
    num_cpus: int = Field(0, ge=0, description="CPUs of the local Ray; 0 (default) = every core of this machine.")
    rows_per_task: int = Field(
        1,
        ge=1,
        description="Rows per Ray task at least: the unit a crashed worker's retry redoes. Default 1 (more when "
        "the batch would otherwise need more than max_tasks tasks).",
    )
    max_tasks: int = Field(
        1024,
        ge=1,
        description="A batch runs as at most this many Ray tasks; larger batches put more rows in each task. "
        "Ray Data's driver keeps a few KB per task until the batch ends, so this keeps its memory flat. "
        "Default 1024.",
    )
    max_retries: int = Field(
        3, ge=0, description="How many times Ray reruns a task whose worker process died. Default 3."
    )

    @classmethod
    def from_env(cls) -> EngineResource:
        values: dict[str, object] = {}
        for field, var in _ENV_FIELDS.items():
            raw = os.environ.get(var, "").strip()
            if raw:
                values[field] = int(raw) if field in ("ray_min_rows", "num_cpus") and raw.isdigit() else raw
        try:
            return cls(**values)
        except Exception as exc:  # noqa: BLE001 - pydantic's message, made one line
            raise KiwiUserError(
                f"bad engine setting ({', '.join(f'{_ENV_FIELDS[k]}={v}' for k, v in values.items())}): "
                f"{' '.join(str(exc).split())[:300]}",
                code="bad_engine_setting",
            ) from None

    def settings(self) -> EngineSettings:
        """The picklable settings the stage functions pass to `map_rows`."""
        return EngineSettings(
            engine=self.engine,
            ray_address=self.ray_address,
            ray_min_rows=self.ray_min_rows,
            num_cpus=self.num_cpus,
            rows_per_task=self.rows_per_task,
            max_tasks=self.max_tasks,
            max_retries=self.max_retries,
        )
