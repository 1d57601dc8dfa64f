"""RefVIE stage 4: quality control and assembly of the training-ready quadruplets.

Per pair: the reference passes a size filter and a semantic judge (does it match the target's
edited region?); then near-duplicates are removed by image embeddings. Pairs whose reference is
dropped stay as instruction-only samples (reference none) and the reason is quarantined; pairs
that duplicate an earlier one are dropped whole. Output: one row per training sample with every
input hash, so a checkpoint's data can be traced and verified.
"""

import time

import dagster as dg
import numpy as np
import pandas as pd
from PIL import Image

from assets.references import reference_images, region_from_row
from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingest.reasons import QuarantineRecord
from kiwi_platform.lib.contact_sheet import contact_sheet
from kiwi_platform.lib.failures import user_failure
from kiwi_platform.lib.files import atomic_path
from kiwi_platform.lib.preview import image_markdown
from kiwi_platform.lib.publish import publish_asset_folder
from kiwi_platform.media.clips import read_clip
from kiwi_platform.partitions import batches
from kiwi_platform.refvie.backends.registry import build_embedder, build_judge
from kiwi_platform.refvie.pipeline import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_JUDGE_THRESHOLD, judge_reference
from kiwi_platform.refvie.quality import find_near_duplicates
from kiwi_platform.refvie.types import SampleRejected
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore

QUADRUPLET_COLUMNS = [
    "batch", "pair_id", "row", "prompt", "task", "edit_type", "media", "src_clip", "tgt_clip", "ref_image",
    "reference_origin", "frames", "height", "width", "fps", "judge_score", "type_confidence", "dup_similarity",
    "mask_area", "src_clip_sha256", "tgt_clip_sha256", "ref_sha256", "mask_file", "mask_sha256",
    "src_sha256", "tgt_sha256",
]  # fmt: skip


class QualityConfig(dg.Config):
    """QC thresholds and backends (see README, "Switching backends")."""

    min_reference_side: int = 16  # references smaller than this (either side) are degenerate
    judge: str = "embedding"  # embedding | vlm
    judge_model_path: str = ""
    judge_min_score: float = DEFAULT_JUDGE_THRESHOLD  # in [0, 1]; below it the reference does not match the edit
    embedder: str = "phash"  # phash | clip
    embedder_model_path: str = ""
    duplicate_threshold: float = DEFAULT_DUPLICATE_THRESHOLD  # embedding cosine at/above which samples are near-duplicates


def _task(media: str, has_ref: bool) -> str:
    return f"{media}_ref" if has_ref else media


@dg.asset(
    partitions_def=batches,
    deps=[reference_images],
    group_name="refvie",
    kinds={"python", "pandas", "dvc"},
    description="Training-ready quadruplets (source, instruction, reference | none, target) after QC and dedup.",
)
def quadruplets(
    context: dg.AssetExecutionContext, config: QualityConfig, store: MediaStore, dvc: DvcRepo, lakefs: LakeFSResource
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        refs = store.read_table(batch, "reference_images")
        judge = build_judge(config.judge, model_path=config.judge_model_path or None)
        embedder = build_embedder(config.embedder, model_path=config.embedder_model_path or None)
    except KiwiUserError as exc:
        raise user_failure(exc) from None
    started, rejected, samples, sheet_items = time.perf_counter(), [], [], []
    for rec in refs.to_dict("records"):
        sample = {c: rec.get(c) for c in QUADRUPLET_COLUMNS if c in rec}
        sample.update(ref_image="", ref_sha256="", judge_score=np.nan, dup_similarity=0.0)
        target = read_clip(store.root_path / rec["tgt_clip"])
        source = read_clip(store.root_path / rec["src_clip"])
        region = region_from_row(rec, store)
        reference = None
        if rec["reference_file"]:
            reference = np.asarray(Image.open(store.root_path / rec["reference_file"]).convert("RGB"))
            reason = _reference_problem(reference, region, target, source, rec, judge, config, sample)
            if reason:
                rejected.append(QuarantineRecord(int(rec["row"]), reason[0], reason[1], rec["reference_file"], "quadruplets",
                                                 reason[2], rec["pair_id"]))  # fmt: skip
                reference = None
            else:
                sample.update(ref_image=rec["reference_file"], ref_sha256=rec["reference_sha256"])
        sample["task"] = _task(rec["media"], reference is not None)
        sample["_embed"] = reference if reference is not None else target[len(target) // 2]
        samples.append(sample)
        if len(sheet_items) < 8:
            sheet_items.append((source[0], target[0], region.masks[0], reference))
    kept = _drop_duplicates(samples, embedder, config.duplicate_threshold, rejected)
    table = pd.DataFrame([{k: v for k, v in s.items() if not k.startswith("_")} for s in kept], columns=QUADRUPLET_COLUMNS)
    extra = {
        "judge": config.judge,
        "embedder": config.embedder,
        "task_mix": dg.MetadataValue.json(table["task"].value_counts().to_dict() if len(table) else {}),
        "edit_type_mix": dg.MetadataValue.json(table["edit_type"].value_counts().to_dict() if len(table) else {}),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if sheet_items:
        sheet = contact_sheet(sheet_items)
        sheet_path = store.asset_dir(batch, "quadruplets") / "contact_sheet.jpg"
        _save_image(sheet, sheet_path)
        extra["contact_sheet"] = dg.MetadataValue.md(
            "source | target | mask overlay | reference\n\n" + image_markdown(sheet, "contact sheet")
        )
        extra["contact_sheet_path"] = dg.MetadataValue.path(str(sheet_path))
    return publish_asset_folder(
        context, store=store, dvc=dvc, lakefs=lakefs, asset="quadruplets", table=table, quarantined=rejected,
        rows_in=len(refs), extra_metadata=extra,
    )  # fmt: skip


def _reference_problem(reference, region, target, source, rec, judge, config, sample) -> tuple[str, str, float] | None:
    """Size filter, then the semantic judge; returns (reason, message, score) or None if it passes."""
    h, w = reference.shape[:2]
    if min(h, w) < config.min_reference_side:
        return "qc_reference_too_small", f"reference is {w}x{h}, below {config.min_reference_side} px", float(min(h, w))
    try:
        sample["judge_score"] = judge_reference(
            reference, target, source, region, rec["prompt"], judge=judge, threshold=config.judge_min_score
        )
    except SampleRejected as rej:
        sample["judge_score"] = rej.score if rej.score is not None else np.nan
        return rej.reason, f"judge {config.judge}: {rej.message}", rej.score
    return None


def _drop_duplicates(samples: list[dict], embedder, threshold: float, rejected: list) -> list[dict]:
    """Drop later near-duplicates, comparing references with references and targets with targets."""
    drop: dict[int, tuple[int, float]] = {}
    for has_ref in (True, False):
        idx = [i for i, s in enumerate(samples) if bool(s["ref_image"]) == has_ref]
        if len(idx) < 2:
            continue
        emb = embedder.embed([samples[i]["_embed"] for i in idx])
        for dup, of, sim in find_near_duplicates(emb, threshold):
            drop[idx[dup]] = (idx[of], float(sim))
        sims = emb @ emb.T
        np.fill_diagonal(sims, -1.0)
        for j, i in enumerate(idx):
            samples[i]["dup_similarity"] = float(max(0.0, sims[j].max()))
    for i, (of, sim) in sorted(drop.items()):
        s = samples[i]
        rejected.append(QuarantineRecord(int(s["row"]), "qc_near_duplicate", f"near-duplicate of row {samples[of]['row']} "
                                         f"(similarity {sim:.3f})", s["ref_image"] or s["tgt_clip"], "quadruplets", sim, s["pair_id"]))  # fmt: skip
    return [s for i, s in enumerate(samples) if i not in drop]


def _save_image(img: Image.Image, path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=85)
