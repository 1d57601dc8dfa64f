"""The Dagster code location: every asset, check, job and resource of Kiwi Platform.

Loaded by `dagster dev` / `dg` through `[tool.dagster]` in pyproject.toml and by the `kiwi` CLI.
Asset modules are discovered from the `assets` package; what holds for every asset (resources,
the run logger, jobs, schedules and sensors, and how each asset explains itself in the UI: group
description, owners, tags, a link to its source) is wired here once.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Sequence

import dagster as dg

# Partitioned asset checks (preview) and code references (beta) in Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

import assets  # noqa: E402
from kiwi_platform.automation import retrain_on_new_quadruplets, retraining_job, weekly_retraining  # noqa: E402
from kiwi_platform.inbox_sensor import ingest_from_inbox  # noqa: E402
from kiwi_platform.resources import build_resources  # noqa: E402
from kiwi_platform.run_logger import kiwi_console  # noqa: E402

# Dagster has no group descriptions: each group's line goes on its assets (metadata, tags) and on
# the code location's page. owners: Dagster's "team:" form; rename to the real teams.
GROUPS: dict[str, dict] = {
    "ingestion": {
        "description": "Ingestion: a manifest of edit pairs in; every row accepted (media probed, sha256-hashed, "
        "normalized to clips) or quarantined with a reason code.",
        "owners": ["team:kiwi-data"],
        "step": "1-ingestion",
    },
    "refvie": {
        "description": "RefVIE, reference synthesis (the Kiwi-Edit data recipe for reference-guided editing): "
        "finds where each edit happened (mask, box, edit type), builds the reference image it implies "
        "(the object on white, or the clean background), and QCs the (source, instruction, reference, "
        "target) training quadruplets.",
        "owners": ["team:kiwi-data"],
        "step": "2-reference-synthesis",
    },
    "training": {
        "description": "Training: per-stage data mixes (DVC-tracked), the feature cache (VAE latents and MLLM "
        "processor tensors, sharded, DVC-tracked) and the three-stage curriculum (alignment, instruction tuning, "
        "reference tuning); one MLflow run and registered model version per stage.",
        "owners": ["team:kiwi-ml"],
        "step": "3-training",
    },
    "evaluation": {
        "description": "Evaluation: benchmark suites, the newest model and the champion scored on them, and "
        "the promotion of the `champion` alias when the candidate is not worse.",
        "owners": ["team:kiwi-ml"],
        "step": "4-evaluation",
    },
}


def _source_reference(assets_def: dg.AssetsDefinition) -> dg.LocalFileCodeReference | None:
    """Where the asset's body is written, seen through decorators that wrap it (`user_errors`).

    Dagster's `with_source_code_references` takes the file from the outermost function, which for
    a wrapped body is the wrapper's module (kiwi_platform/lib/failures.py), and the line from the
    unwrapped one; unwrapping first gives the asset function's own file and line.
    """
    compute = getattr(assets_def.node_def, "compute_fn", None)
    fn = getattr(compute, "decorated_fn", compute)
    if fn is None:
        return None
    fn = inspect.unwrap(fn)
    try:
        path, line = inspect.getsourcefile(fn), inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return None
    return dg.LocalFileCodeReference(file_path=os.path.abspath(path), line_number=line) if path else None


def explain(assets_defs: Sequence) -> list:
    """Every asset with its group's description, owners and tags, and a link to its source."""
    out = []
    for assets_def in assets_defs:
        if not isinstance(assets_def, dg.AssetsDefinition):
            out.append(assets_def)
            continue
        reference = _source_reference(assets_def)

        def describe(spec: dg.AssetSpec, reference=reference) -> dg.AssetSpec:
            group = GROUPS.get(spec.group_name or "", {})
            metadata = dict(spec.metadata)
            if reference is not None:
                metadata["dagster/code_references"] = dg.CodeReferencesMetadataValue(code_references=[reference])
            if group:
                metadata["group"] = group["description"]
            return spec.replace_attributes(
                owners=list(spec.owners) or group.get("owners", []),
                tags={**({"kiwi/step": group["step"]} if group else {}), **spec.tags},
                metadata=metadata,
            )

        out.append(assets_def.map_asset_specs(describe))
    return out


def _groups_markdown() -> str:
    rows = [f"| `{name}` | {g['description']} | {', '.join(g['owners'])} |" for name, g in GROUPS.items()]
    return "| group | what it does | owners |\n|---|---|---|\n" + "\n".join(rows)


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=explain(dg.load_assets_from_package_module(assets)),
        asset_checks=dg.load_asset_checks_from_package_module(assets),
        resources=build_resources(),
        jobs=[retraining_job],
        schedules=[weekly_retraining],
        sensors=[retrain_on_new_quadruplets, ingest_from_inbox],
        loggers={"kiwi_console": kiwi_console},
        # steps run inside the run worker: a step per process re-imports the code location (8-10 s
        # each on 2 cores, benchmarks/measured/ui_launch_2026-12-01.md); our steps are sequential anyway
        executor=dg.in_process_executor,
        metadata={"asset groups": dg.MetadataValue.md(_groups_markdown())},
    )


defs = build_definitions()
