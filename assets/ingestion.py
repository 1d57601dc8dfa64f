"""Ingestion: a registered manifest becomes probed, hashed pairs, then normalized clips.

`raw_edit_pairs` checks every row (quarantining the unusable ones with a reason) and copies the
accepted media into the batch folder under content-addressed names, so DVC versions exactly
the bytes the rest of the pipeline reads. `normalized_clips` decodes, samples and resizes them
into the clip format of `kiwi_platform.media.clips`.
"""


import time
from pathlib import Path

import dagster as dg
import pandas as pd

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingest.manifest import read_manifest
from kiwi_platform.ingest.normalize import normalize_media
from kiwi_platform.ingest.reasons import QuarantineRecord, RowRejected
from kiwi_platform.ingest.validate import validate_manifest
from kiwi_platform.lib.failures import user_failure
from kiwi_platform.lib.files import sha256_file
from kiwi_platform.lib.preview import pair_strip_markdown
from kiwi_platform.lib.publish import copy_into, publish_asset_folder
from kiwi_platform.media.clips import SUFFIX, clip_header
from kiwi_platform.partitions import batches
from kiwi_platform.resources.dvc import DvcRepo
from kiwi_platform.resources.lakefs import LakeFSResource
from kiwi_platform.resources.store import MediaStore


class RawPairsConfig(dg.Config):
    """Run config for `raw_edit_pairs`."""

    min_frames: int = 81  # videos shorter than this are quarantined (too_few_frames)


class NormalizeConfig(dg.Config):
    """Run config for `normalized_clips` (SPEC section 1 sample preparation)."""

    num_frames: int = 81  # first N frames from frame 0; images always give 1
    max_area: int = 1280 * 720  # resize so width*height <= max_area, keeping the aspect ratio
    multiple: int = 32  # floor both sides to a multiple of this, then center-crop


@dg.asset(
    partitions_def=batches,
    group_name="ingestion",
    kinds={"python", "csv", "dvc"},
    description="Manifest rows of one batch, every media file probed (PyAV) and sha256-hashed; bad rows quarantined.",
)
def raw_edit_pairs(
    context: dg.AssetExecutionContext,
    config: RawPairsConfig,
    store: MediaStore,
    dvc: DvcRepo,
    lakefs: LakeFSResource,
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        manifest = read_manifest(store.batch_manifest(batch))
    except KiwiUserError as exc:
        raise user_failure(exc) from None
    context.log.info(f"batch {batch}: {len(manifest.rows)} rows from {manifest.path}")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            context.log.info(f"probed {done}/{total} rows")

    result = validate_manifest(manifest, min_frames=config.min_frames, progress=progress)
    folder = store.asset_dir(batch, "raw_edit_pairs")
    media_dir = folder / "media"
    kept: set[Path] = set()
    for rec in result.accepted:
        for role in ("src", "tgt", "ref"):
            if rec[f"{role}_path"]:
                dst = media_dir / f"{rec[f'{role}_sha256']}{Path(rec[f'{role}_path']).suffix.lower()}"
                kept.add(copy_into(Path(rec[f"{role}_path"]), dst))
                rec[f"{role}_file"] = store.rel(dst)
            else:
                rec[f"{role}_file"] = ""
    if media_dir.is_dir():
        for stale in set(media_dir.iterdir()) - kept:
            stale.unlink()
    (folder / "manifest.csv").unlink(missing_ok=True)  # the manifest may change under the same batch name
    copy_into(manifest.path, folder / "manifest.csv")
    table = pd.DataFrame(result.accepted, columns=_raw_columns(result.accepted))
    table.insert(0, "batch", batch)
    table["manifest_sha256"] = manifest.sha256
    return publish_asset_folder(
        context,
        store=store,
        dvc=dvc,
        lakefs=lakefs,
        asset="raw_edit_pairs",
        table=table,
        quarantined=result.quarantined,
        rows_in=len(manifest.rows),
        extra_metadata={
            "manifest": dg.MetadataValue.path(str(manifest.path)),
            "manifest_sha256": manifest.sha256,
            "rows_repaired": manifest.repaired_rows,
            "videos": int((table["media"] == "video").sum()) if len(table) else 0,
            "images": int((table["media"] == "image").sum()) if len(table) else 0,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )


def _raw_columns(records: list[dict]) -> list[str]:
    if records:
        return list(records[0].keys())
    from kiwi_platform.media.probe import MediaInfo

    probe = [f"{p}{k}" for p in ("src_", "tgt_") for k in MediaInfo.__dataclass_fields__]
    return [
        "pair_id", "row", "prompt", "media", "src_rel", "tgt_rel", "ref_rel", "src_path", "tgt_path", "ref_path",
        "src_sha256", "tgt_sha256", "ref_sha256", *probe, "ref_width", "ref_height", "src_file", "tgt_file", "ref_file",
    ]  # fmt: skip


NORMALIZED_COLUMNS = [
    "batch", "pair_id", "row", "prompt", "media", "src_clip", "tgt_clip", "ref_file", "frames", "height", "width",
    "fps", "src_clip_sha256", "tgt_clip_sha256", "src_sha256", "tgt_sha256", "ref_sha256",
]  # fmt: skip


@dg.asset(
    partitions_def=batches,
    deps=[raw_edit_pairs],
    group_name="ingestion",
    kinds={"python", "video", "dvc"},
    description="Accepted pairs decoded, first N frames, area-capped, sides in multiples of 32, center-cropped.",
)
def normalized_clips(
    context: dg.AssetExecutionContext,
    config: NormalizeConfig,
    store: MediaStore,
    dvc: DvcRepo,
    lakefs: LakeFSResource,
) -> dg.MaterializeResult:
    batch = context.partition_key
    try:
        raw = store.read_table(batch, "raw_edit_pairs")
    except KiwiUserError as exc:
        raise user_failure(exc) from None
    folder = store.asset_dir(batch, "normalized_clips")
    clip_dir = folder / "clips"
    started, decoded, reused = time.perf_counter(), 0, 0
    rows, rejected, kept = [], [], set()
    settings = {"num_frames": config.num_frames, "max_area": config.max_area, "multiple": config.multiple}
    for i, rec in enumerate(raw.to_dict("records"), start=1):
        try:
            clips = {}
            for role in ("src", "tgt"):
                source = store.root_path / rec[f"{role}_file"]
                fps = float(rec[f"{role}_fps"])
                dst = clip_dir / f"{rec[f'{role}_sha256'][:20]}-{config.num_frames}f-{config.max_area}a-{config.multiple}m{SUFFIX}"
                if dst.exists() and _clip_matches(dst, rec[f"{role}_sha256"], settings):
                    reused += 1
                    header = clip_header(dst)
                else:
                    header = normalize_media(source, dst, fps=fps, **settings, meta={"source_sha256": rec[f"{role}_sha256"], **settings})
                    decoded += 1
                kept.add(dst)
                clips[role] = (dst, header)
            (src_clip, src_h), (tgt_clip, tgt_h) = clips["src"], clips["tgt"]
            if (src_h["frames"], src_h["height"], src_h["width"]) != (tgt_h["frames"], tgt_h["height"], tgt_h["width"]):
                raise RowRejected("size_mismatch", f"normalized source {src_h['frames']}x{src_h['height']}x{src_h['width']} "
                                  f"!= target {tgt_h['frames']}x{tgt_h['height']}x{tgt_h['width']}")  # fmt: skip
            rows.append({
                "batch": batch, "pair_id": rec["pair_id"], "row": int(rec["row"]), "prompt": rec["prompt"], "media": rec["media"],
                "src_clip": store.rel(src_clip), "tgt_clip": store.rel(tgt_clip), "ref_file": rec["ref_file"],
                "frames": src_h["frames"], "height": src_h["height"], "width": src_h["width"], "fps": src_h["fps"],
                "src_clip_sha256": sha256_file(src_clip), "tgt_clip_sha256": sha256_file(tgt_clip),
                "src_sha256": rec["src_sha256"], "tgt_sha256": rec["tgt_sha256"], "ref_sha256": rec["ref_sha256"],
            })  # fmt: skip
        except RowRejected as rej:
            rejected.append(QuarantineRecord(int(rec["row"]), rej.reason, rej.message, rej.path, "normalized_clips", pair_id=rec["pair_id"]))
        if i % 10 == 0 or i == len(raw):
            context.log.info(f"normalized {i}/{len(raw)} pairs ({decoded} clips decoded, {reused} reused)")
    if clip_dir.is_dir():
        for stale in set(clip_dir.iterdir()) - kept:
            stale.unlink()
    table = pd.DataFrame(rows, columns=NORMALIZED_COLUMNS)
    seconds = time.perf_counter() - started
    extra = {
        "clips_decoded": decoded,
        "clips_reused": reused,
        "seconds": round(seconds, 2),
        **settings,
    }
    if len(table):
        extra["preview"] = dg.MetadataValue.md(pair_strip_markdown(store.root_path, table.head(4)))
    return publish_asset_folder(
        context, store=store, dvc=dvc, lakefs=lakefs, asset="normalized_clips",
        table=table, quarantined=rejected, rows_in=len(raw), extra_metadata=extra,
    )  # fmt: skip


def _clip_matches(path: Path, source_sha: str, settings: dict) -> bool:
    """Reuse a clip only if it was made from the same bytes with the same settings."""
    try:
        header = clip_header(path)
    except Exception:  # a corrupt clip is simply rebuilt
        return False
    return header.get("source_sha256") == source_sha and all(header.get(k) == v for k, v in settings.items())
