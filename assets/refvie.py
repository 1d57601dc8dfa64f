"""RefVIE: where each edit happened, the reference it implies, and the QC'd training quadruplets.

Logic lives in `kiwi_platform.refvie`; this module only declares the assets and their checks.
Backends are chosen by run config (`grounder`, `segmenter`, `inpainter`, `judge`, `embedder`
plus a local `*_model_path` for the real-model ones); the defaults need no weights.
"""

import time
from typing import Literal

import dagster as dg
from pydantic import Field

from kiwi_platform.lib.batch_asset import batch_asset, batch_check
from kiwi_platform.lib.check_results import gx_check_result
from kiwi_platform.lib.contact_sheet import contact_sheet
from kiwi_platform.lib.expectations import between, columns_present, not_null, unique, validate_dataframe, values_in_set
from kiwi_platform.lib.files import save_image_atomic
from kiwi_platform.lib.integrity import check_files
from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.refvie.assembly import TASKS, QualitySettings, assemble_quadruplets, disagreement_rate
from kiwi_platform.refvie.pipeline import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_JUDGE_THRESHOLD
from kiwi_platform.refvie.previews import reference_preview, region_preview
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import ground_batch
from kiwi_platform.refvie.stage_support import backend_spec, rate_progress
from kiwi_platform.refvie.types import EDIT_TYPES
from kiwi_platform.resources.batch_data import BatchData
from kiwi_platform.resources.engine import EngineResource
from kiwi_platform.resources.store import MediaStore

FILE_HASH_COLUMNS = (
    ("src_clip", "src_clip_sha256"),
    ("tgt_clip", "tgt_clip_sha256"),
    ("ref_image", "ref_sha256"),
    ("mask_file", "mask_sha256"),
)


class EditRegionsConfig(dg.Config):
    """Which grounder/segmenter find the edited region (README, "Switching RefVIE backends")."""

    grounder: Literal["diff", "qwen"] = Field(
        "diff",
        description="Finds the edited box. diff: aligned frame differences, no weights (default). "
        "qwen: Qwen2.5-VL grounding prompt; needs grounder_model_path.",
    )
    grounder_model_path: str = Field(
        "", description="Local Qwen2.5-VL folder (transformers format) for grounder=qwen; unused otherwise."
    )
    segmenter: Literal["diff", "sam"] = Field(
        "diff",
        description="Per-frame mask inside the box. diff: difference mask, no weights (default). "
        "sam: transformers SamModel with a box prompt; needs segmenter_model_path.",
    )
    segmenter_model_path: str = Field("", description="Local SAM folder (transformers format) for segmenter=sam.")
    model_device: str = Field(
        "auto",
        description="Device of the real-model backends: auto (cuda when this step sees a GPU, else cpu; default), "
        "cpu, cuda or cuda:N. Unused by the weight-free defaults.",
    )


class ReferenceConfig(dg.Config):
    """Which inpainter cleans the background for background-change references."""

    inpainter: Literal["opencv", "diffusers"] = Field(
        "opencv",
        description="Fills the removed object for background references. opencv: Telea, no weights (default). "
        "diffusers: any AutoPipelineForInpainting folder; needs inpainter_model_path.",
    )
    inpainter_model_path: str = Field(
        "", description="Local diffusers inpainting pipeline folder for inpainter=diffusers."
    )
    model_device: str = Field(
        "auto",
        description="Device of the real-model backends: auto (cuda when this step sees a GPU, else cpu; default), "
        "cpu, cuda or cuda:N. Unused by the weight-free defaults.",
    )


class QualityConfig(dg.Config):
    """QC thresholds and backends (README, "Switching RefVIE backends"); dropped samples go to quarantine."""

    min_reference_side: int = Field(
        16, ge=1, description="Smallest reference side, in pixels; smaller ones are qc_reference_too_small. Default 16."
    )
    max_reference_aspect: float = Field(
        8.0,
        ge=1,
        description="Largest long-side/short-side ratio of a reference (a ratio, >1); longer slivers are "
        "qc_reference_too_small. Default 8.",
    )
    judge: Literal["embedding", "vlm"] = Field(
        "embedding",
        description="Does the reference match the edit? embedding: image-embedding similarity, no weights "
        "(default). vlm: a vision-language judge (KIWI_JUDGE_* endpoint or judge_model_path).",
    )
    judge_model_path: str = Field("", description="Local model folder for judge=vlm; unused otherwise.")
    judge_min_score: float = Field(
        DEFAULT_JUDGE_THRESHOLD,
        ge=0,
        le=1,
        description=f"Judge score in [0, 1] below which the reference is dropped (qc_judge_rejected; the pair "
        f"stays as an instruction-only sample). Default {DEFAULT_JUDGE_THRESHOLD}.",
    )
    embedder: Literal["phash", "clip"] = Field(
        "phash",
        description="Image embedding for near-duplicate detection. phash: perceptual hash + layout/colour "
        "descriptor, no weights (default). clip: a local CLIP folder in embedder_model_path.",
    )
    embedder_model_path: str = Field("", description="Local CLIP folder (transformers format) for embedder=clip.")
    duplicate_threshold: float = Field(
        DEFAULT_DUPLICATE_THRESHOLD,
        ge=0,
        le=1,
        description=f"Embedding cosine similarity in [0, 1] at or above which a sample is a near-duplicate of an "
        f"earlier one and dropped whole (qc_near_duplicate). Default {DEFAULT_DUPLICATE_THRESHOLD}.",
    )


@batch_asset(group_name="refvie", kinds={"python", "pytorch"}, deps=["normalized_clips"])
def edit_regions(
    context: dg.AssetExecutionContext, config: EditRegionsConfig, data: BatchData, engine: EngineResource
) -> dg.MaterializeResult:
    """Edited region per pair: per-frame mask, box and edit type (pluggable grounder + segmenter)."""
    batch, started = context.partition_key, time.perf_counter()
    clips = data.read_table(batch, "normalized_clips")
    # backends by name: each engine worker builds (loads) its own, once
    grounder = backend_spec("grounder", config.grounder, config.grounder_model_path, config.model_device)
    segmenter = backend_spec("segmenter", config.segmenter, config.segmenter_model_path, config.model_device)
    folder = data.store.asset_dir(batch, "edit_regions")
    progress = rate_progress(context.log.info, "grounded")
    settings = engine.settings()
    context.log.info(settings.describe(len(clips)))
    table, rejected = ground_batch(
        clips,
        data.store.root_path,
        folder,
        grounder=grounder,
        segmenter=segmenter,
        progress=progress,
        engine=settings,
    )
    types = table["edit_type"].value_counts().to_dict() if len(table) else {}
    extra = {
        "grounder": config.grounder,
        "segmenter": config.segmenter,
        "edit_types": dg.MetadataValue.json({k: int(v) for k, v in types.items()}),
        "seconds": round(time.perf_counter() - started, 2),
    }
    preview = region_preview(table, data.store.root_path)
    if preview is not None:
        extra["preview"] = dg.MetadataValue.md(
            "Per edit type: the middle target frame of a few pairs, the found edit mask tinted red.\n\n"
            + image_markdown(preview, "edit masks per edit type")
        )
    return data.publish(context, "edit_regions", table, rejected, rows_in=len(clips), extra_metadata=extra)


@batch_asset(group_name="refvie", kinds={"python", "image"}, deps=[edit_regions])
def reference_images(
    context: dg.AssetExecutionContext, config: ReferenceConfig, data: BatchData, engine: EngineResource
) -> dg.MaterializeResult:
    """Reference image per pair: object on a white canvas (local edits) or the inpainted clean background."""
    batch, started = context.partition_key, time.perf_counter()
    regions = data.read_table(batch, "edit_regions")
    inpainter = backend_spec("inpainter", config.inpainter, config.inpainter_model_path, config.model_device)
    folder = data.store.asset_dir(batch, "reference_images")
    progress = rate_progress(context.log.info, "references for")
    settings = engine.settings()
    context.log.info(settings.describe(len(regions)))
    table, rejected, origins = synthesize_batch(
        regions, data.store.root_path, folder, inpainter=inpainter, progress=progress, engine=settings
    )
    extra = {
        "inpainter": config.inpainter,
        "reference_origin": dg.MetadataValue.json(origins),
        "seconds": round(time.perf_counter() - started, 2),
    }
    preview = reference_preview(table, data.store.root_path)
    if preview is not None:
        extra["preview"] = dg.MetadataValue.md(
            "Per edit type: a few of the references kept (synthesized, or brought by the manifest).\n\n"
            + image_markdown(preview, "references per edit type")
        )
    return data.publish(context, "reference_images", table, rejected, rows_in=len(regions), extra_metadata=extra)


@batch_asset(group_name="refvie", kinds={"python", "pandas"}, deps=[reference_images])
def quadruplets(
    context: dg.AssetExecutionContext, config: QualityConfig, data: BatchData, engine: EngineResource
) -> dg.MaterializeResult:
    """Training-ready quadruplets (source, instruction, reference | none, target) after QC and dedup."""
    batch, started = context.partition_key, time.perf_counter()
    refs = data.read_table(batch, "reference_images")
    # backends by name: checked and built here once, and once per engine worker
    judge = backend_spec("judge", config.judge, config.judge_model_path)
    embedder = backend_spec("embedder", config.embedder, config.embedder_model_path)
    settings = QualitySettings(
        min_reference_side=config.min_reference_side,
        max_reference_aspect=config.max_reference_aspect,
        judge_min_score=config.judge_min_score,
        duplicate_threshold=config.duplicate_threshold,
        judge_name=config.judge,
    )
    engine_settings = engine.settings()
    context.log.info(engine_settings.describe(len(refs)))
    progress = rate_progress(context.log.info, "checked")
    out = assemble_quadruplets(
        refs,
        data.store.root_path,
        judge=judge,
        embedder=embedder,
        settings=settings,
        progress=progress,
        engine=engine_settings,
    )
    table = out.table
    extra = {
        "judge": config.judge,
        "embedder": config.embedder,
        "task_mix": dg.MetadataValue.json(table["task"].value_counts().to_dict() if len(table) else {}),
        "edit_type_mix": dg.MetadataValue.json(table["edit_type"].value_counts().to_dict() if len(table) else {}),
        # share of kept pairs whose prompt and pixels name different edit types (flagged, not dropped)
        "type_disagreement_rate": disagreement_rate(table),
        "type_disagreements": int(table["type_disagreement"].astype(bool).sum()) if len(table) else 0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if out.sheet_items:
        sheet = contact_sheet(out.sheet_items)
        sheet_path = save_image_atomic(sheet, data.store.asset_dir(batch, "quadruplets") / "contact_sheet.jpg")
        markdown = "source | target | mask overlay | reference\n\n" + image_markdown(sheet, "contact sheet")
        extra["contact_sheet"] = dg.MetadataValue.md(markdown)
        extra["contact_sheet_path"] = dg.MetadataValue.path(str(sheet_path))
    return data.publish(context, "quadruplets", table, out.rejected, rows_in=len(refs), extra_metadata=extra)


@batch_check(quadruplets)
def quadruplet_files_intact(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Every file a quadruplet references exists and matches its recorded sha256."""
    df = store.read_table(context.partition_key, "quadruplets")
    checked, found = check_files(df, store.root_path, FILE_HASH_COLUMNS)
    problems = [str(p) for p in found]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "files_checked": checked,
            "problems": len(problems),
            "examples": dg.MetadataValue.json(problems[:20]),
        },
    )


@batch_check(quadruplets)
def quadruplets_valid(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Schema, unique pair ids, scores within [0, 1], known task and edit types."""
    df = store.read_table(context.partition_key, "quadruplets")
    required = ["pair_id", "prompt", "task", "edit_type", "src_clip", "tgt_clip", "ref_image", "judge_score"]
    expectations = [columns_present(required), unique("pair_id"), not_null("prompt")]
    expectations += [between(c, 0.0, 1.0) for c in ("judge_score", "type_confidence", "dup_similarity", "mask_area")]
    expectations += [values_in_set("task", TASKS), values_in_set("edit_type", EDIT_TYPES)]
    return gx_check_result(validate_dataframe(df, expectations, suite_name="quadruplets"))


@batch_check(quadruplets, blocking=False)
def quadruplet_task_mix(context: dg.AssetCheckExecutionContext, store: MediaStore) -> dg.AssetCheckResult:
    """Warning only (severity WARN, never blocks): the batch's task and edit-type mix; warns when it yields no sample.

    A batch whose every row was quarantined (the upstream demo manifests) is a warning, not an
    error: nothing downstream breaks, training simply has nothing from it.
    """
    df = store.read_table(context.partition_key, "quadruplets")
    tasks = {t: int((df["task"] == t).sum()) for t in TASKS}
    types = {t: int((df["edit_type"] == t).sum()) for t in EDIT_TYPES}
    table = "| task | samples |\n|---|---|\n" + "\n".join(f"| {t} | {n} |" for t, n in tasks.items())
    status = (
        f"{len(df)} samples"
        if len(df)
        else "warning: this batch yields no training sample (every row quarantined; see `kiwi quarantine`)"
    )
    return dg.AssetCheckResult(
        passed=len(df) > 0,
        # WARN on every evaluation, passed ones too: the UI colours a partitioned check's summary
        # ("2 of 4 partitions failed") by the latest evaluation's severity, so it stays a warning
        severity=dg.AssetCheckSeverity.WARN,
        description=status,
        metadata={
            "status": status,
            "samples": len(df),
            "tasks": dg.MetadataValue.json(tasks),
            "edit_types": dg.MetadataValue.json(types),
            "mix": dg.MetadataValue.md(table),
        },
    )
