"""RefVIE stage 4: QC and deduplication that turn reference rows into training quadruplets.

Per pair the reference must pass the size filter (`reference_size_ok`: minimum side and aspect
ratio) and the semantic judge; a failing reference is dropped (the pair stays as an
instruction-only sample) and quarantined with its reason. Then later near-duplicates are dropped
whole, references compared with references and targets with targets.

The per-pair part (`QualityRow`: size filter, judge, dedup embedding) runs through
`kiwi_platform.engine.stream_rows`; the near-duplicate pass needs every embedding and stays in the
driver, which holds per pair one small vector (1.4 KB) and a tuple of table values, never a clip,
and builds the similarity matrix a block of rows at a time (`quality.similarity_rows`; N x N was
0.3-0.8 GB at 10,000 pairs).

Each quadruplet also carries both witnesses of its edit type (`instruction_type` from the
prompt, `pixel_type` from mask geometry) and `type_disagreement` when they differ: such a pair
is kept, with the lower `type_confidence` the typing step gives it, so training can filter or
down-weight it instead of the pipeline silently trusting either witness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.engine import EngineSettings, Progress, stream_rows
from kiwi_platform.engine.frames import TableRows
from kiwi_platform.lib import shards
from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.edit_types import TypeDecision, type_decision
from kiwi_platform.refvie.near_duplicates import near_duplicates
from kiwi_platform.refvie.pipeline import judge_reference
from kiwi_platform.refvie.quality import reference_size_ok
from kiwi_platform.refvie.references import aligned_source
from kiwi_platform.refvie.region_table import BackendSpec, region_from_row, rejection_record, resolve
from kiwi_platform.refvie.types import EditRegion, ImageEmbedder, ReferenceJudge, SampleRejected

QUADRUPLET_COLUMNS = [
    "batch",
    "pair_id",
    "row",
    "prompt",
    "task",
    "edit_type",
    "media",
    "src_clip",
    "tgt_clip",
    "ref_image",
    "reference_origin",
    "frames",
    "height",
    "width",
    "fps",
    "judge_score",
    "type_confidence",
    "instruction_type",
    "pixel_type",
    "type_disagreement",
    "dup_similarity",
    "mask_area",
    "src_clip_sha256",
    "tgt_clip_sha256",
    "ref_sha256",
    "mask_file",
    "mask_sha256",
    "src_sha256",
    "tgt_sha256",
]
_POSITION = {c: i for i, c in enumerate(QUADRUPLET_COLUMNS)}
TASKS = ("image", "video", "image_ref", "video_ref")
SHEET_ROWS = 8


@dataclass(frozen=True)
class QualitySettings:
    """The QC thresholds (the asset's run config)."""

    min_reference_side: int
    max_reference_aspect: float
    judge_min_score: float
    duplicate_threshold: float
    judge_name: str = "embedding"


@dataclass
class Assembly:
    """The quadruplets table, the quarantined references/pairs and the contact-sheet rows."""

    table: pd.DataFrame
    rejected: list[QuarantineRecord] = field(default_factory=list)
    sheet_items: list[tuple] = field(default_factory=list)


@dataclass(frozen=True)
class QualityRow:
    """One `reference_images` row -> its QC'd sample, its reference's quarantine record (if it failed
    the size filter or the judge), its dedup embedding and, for the first rows, contact-sheet frames.

    Runs through `kiwi_platform.engine.stream_rows` (this process or Ray workers): it holds the root,
    the thresholds and the judge/embedder as instances (plain dataclasses by default, pickled to the
    workers) or as `BackendSpec` names built once per worker in `setup()`. Only the embedding comes
    back, never the image, so the driver's memory does not grow with decoded clips.
    """

    root: str
    judge: ReferenceJudge | BackendSpec
    embedder: ImageEmbedder | BackendSpec
    settings: QualitySettings

    def setup(self) -> None:
        resolve(self.judge), resolve(self.embedder)

    def __call__(self, row: tuple[dict, bool]) -> dict:
        rec, with_sheet = row
        root, problem = Path(self.root), None
        sample = {c: rec.get(c) for c in QUADRUPLET_COLUMNS if c in rec}
        sample.update(ref_image="", ref_sha256="", judge_score=np.nan, dup_similarity=0.0)
        target = read_clip(root / rec["tgt_clip"])
        source = read_clip(root / rec["src_clip"])
        region = region_from_row(rec, root)
        sample.update(type_columns(type_evidence(rec, region, source, target)))
        reference = None
        if rec["reference_file"]:
            with shards.open_member(root / rec["reference_file"]) as fh, Image.open(fh) as img:
                reference = np.asarray(img.convert("RGB"))
            judge = resolve(self.judge)
            problem = reference_problem(reference, region, target, source, rec["prompt"], judge, self.settings, sample)
            if problem:
                reason, message, score = problem
                problem = QuarantineRecord(
                    int(rec["row"]), reason, message, rec["reference_file"], "quadruplets", score, rec["pair_id"]
                )
                reference = None
            else:
                sample.update(ref_image=rec["reference_file"], ref_sha256=rec["reference_sha256"])
        sample["task"] = f"{rec['media']}_ref" if reference is not None else rec["media"]
        image = reference if reference is not None else target[len(target) // 2]
        embedding = np.asarray(resolve(self.embedder).embed([image])[0], np.float32).copy()
        sheet = (source[0].copy(), target[0].copy(), region.masks[0].copy(), reference) if with_sheet else None
        return {"sample": sample, "problem": problem, "embedding": embedding, "sheet": sheet}


def assemble_quadruplets(
    refs: pd.DataFrame,
    root: Path,
    *,
    judge: ReferenceJudge | BackendSpec,
    embedder: ImageEmbedder | BackendSpec,
    settings: QualitySettings,
    progress: Progress | None = None,
    engine: EngineSettings | None = None,
) -> Assembly:
    """QC every `reference_images` row (per pair on the engine), then drop near-duplicates in the driver.

    `engine` says where the pairs run (default: this process); the table is the same either way.
    Backends given by name are checked (and built once) here first, so a bad name or option is one
    line before any pair runs.
    """
    resolve(judge), resolve(embedder)
    fn = QualityRow(str(root), judge, embedder, settings)
    rows = TableRows(refs, with_sheet)
    outcomes = stream_rows(fn, rows, settings=engine, rejects=(SampleRejected,), progress=progress)
    rejected, samples, sheet = [], [], []
    vectors: np.ndarray | None = None  # row i = sample i's embedding, filled as samples arrive
    for outcome in outcomes:
        if not outcome.ok:  # a pair QC cannot use at all
            rejected.append(rejection_record(rows[outcome.index][0], outcome.rejection, "quadruplets"))
            continue
        value = outcome.value
        if value["problem"] is not None:
            rejected.append(value["problem"])
        # the table's values only, as a tuple (a dict per sample costs ~1 KB more)
        if vectors is None:  # one float32 matrix, not an array object per sample
            vectors = np.empty((len(rows), len(value["embedding"])), np.float32)
        vectors[len(samples)] = value["embedding"]
        samples.append(tuple(value["sample"].get(c, np.nan) for c in QUADRUPLET_COLUMNS))
        if value["sheet"] is not None:
            sheet.append(value["sheet"])
    embeddings = vectors[: len(samples)] if vectors is not None else []
    drop, nearest = near_duplicates(
        lambda i, c: samples[i][_POSITION[c]], len(samples), embeddings, settings.duplicate_threshold, rejected
    )
    dup = _POSITION["dup_similarity"]
    kept = [(*t[:dup], nearest.get(i, t[dup]), *t[dup + 1 :]) for i, t in enumerate(samples) if i not in drop]
    return Assembly(pd.DataFrame(kept, columns=QUADRUPLET_COLUMNS), rejected, sheet)


def with_sheet(index: int, rec: dict) -> tuple[dict, bool]:
    """A `QualityRow` row: the record, and whether its frames go to the contact sheet (the first rows)."""
    return rec, index < SHEET_ROWS


def type_evidence(rec: dict, region: EditRegion, source: np.ndarray, target: np.ndarray) -> TypeDecision:
    """The typing decision behind a region row: the one `edit_regions` recorded in its scores when
    present, else recomputed from the prompt and the stored masks (after `finalize_masks`, so a
    style or background mask is judged whole; the region's own type is kept either way)."""
    recorded = TypeDecision.from_scores(region.scores, region.edit_type, region.type_confidence)
    if recorded is not None:
        return recorded
    fresh = type_decision(rec["prompt"], region.masks, aligned_source(source, region), target)
    confidence = float(region.type_confidence)
    if fresh.disagreement:  # the stage's score, lowered to the disagreement ceiling
        confidence = min(confidence, fresh.confidence)
    return TypeDecision(region.edit_type, confidence, fresh.instruction_type, fresh.pixel_type, fresh.pixel_confidence)


def type_columns(decision: TypeDecision) -> dict:
    """The quadruplet columns of a typing decision (an empty `instruction_type`: no known wording)."""
    return {
        "type_confidence": float(decision.confidence),
        "instruction_type": decision.instruction_type or "",
        "pixel_type": decision.pixel_type,
        "type_disagreement": bool(decision.disagreement),
    }


def disagreement_rate(table: pd.DataFrame) -> float:
    """Share of quadruplets whose instruction and pixels name different edit types (0 when empty)."""
    if not len(table) or "type_disagreement" not in table:
        return 0.0
    return round(float(table["type_disagreement"].astype(bool).mean()), 4)


def reference_problem(
    reference: np.ndarray,
    region: EditRegion,
    target: np.ndarray,
    source: np.ndarray,
    prompt: str,
    judge: ReferenceJudge,
    settings: QualitySettings,
    sample: dict,
) -> tuple[str, str, float | None] | None:
    """Size filter, then the semantic judge; (reason, message, score) or None if the reference passes.

    Records the judge's score in `sample["judge_score"]` whenever the judge ran.
    """
    if not reference_size_ok(reference, settings.min_reference_side, settings.max_reference_aspect):
        h, w = reference.shape[:2]
        return (
            "qc_reference_too_small",
            f"reference is {w}x{h}: needs {settings.min_reference_side} px per side "
            f"and an aspect ratio within {settings.max_reference_aspect:g}:1",
            float(min(h, w)),
        )
    try:
        sample["judge_score"] = judge_reference(
            reference, target, source, region, prompt, judge=judge, threshold=settings.judge_min_score
        )
    except SampleRejected as rej:
        sample["judge_score"] = rej.score if rej.score is not None else np.nan
        return rej.reason, f"judge {settings.judge_name}: {rej.message}", rej.score
    return None
