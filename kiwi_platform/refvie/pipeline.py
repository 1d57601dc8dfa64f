"""The RefVIE per-pair steps as plain functions: what the Dagster assets call and what the benchmark measures.

Keeping the assets and `benchmarks/refvie_pipeline.py` on these same functions means the
benchmark's numbers are the assets' numbers. Backends are passed in (chosen by config upstream);
the defaults need no weights.
"""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.backends.diff import DiffGrounder, DiffSegmenter
from kiwi_platform.refvie.quality import EmbeddingJudge, PerceptualHashEmbedder
from kiwi_platform.refvie.references import OpenCVInpainter, make_reference, region_cutout
from kiwi_platform.refvie.regions import find_edit_region
from kiwi_platform.refvie.types import (
    EditRegion,
    Grounder,
    Inpainter,
    ReferenceJudge,
    SampleRejected,
    Segmenter,
)

#: Cosine similarity (PerceptualHashEmbedder) at or above which two references are near-duplicates;
#: chosen on the benchmark's injected copies (see benchmarks/refvie_pipeline.py).
DEFAULT_DUPLICATE_THRESHOLD = 0.93
#: Judge scores below this reject the sample (qc_judge_rejected).
DEFAULT_JUDGE_THRESHOLD = 0.35


def default_backends() -> dict[str, object]:
    """The CPU, weight-free backends: grounder, segmenter, inpainter, embedder, judge."""
    return {
        "grounder": DiffGrounder(),
        "segmenter": DiffSegmenter(),
        "inpainter": OpenCVInpainter(),
        "embedder": PerceptualHashEmbedder(),
        "judge": EmbeddingJudge(),
    }


def analyse_pair(
    source: np.ndarray,
    target: np.ndarray,
    prompt: str,
    *,
    grounder: Grounder | None = None,
    segmenter: Segmenter | None = None,
) -> EditRegion:
    """Stage 2: edited region (masks, boxes) and edit type of one pair; raises SampleRejected.

    Any other exception from a backend becomes SampleRejected(qc_backend_error), so one bad
    sample never stops a batch.
    """
    grounder = grounder or DiffGrounder()
    segmenter = segmenter or DiffSegmenter()
    try:
        return find_edit_region(source, target, prompt, grounder, segmenter)
    except SampleRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a backend bug quarantines the pair, never crashes the batch
        raise SampleRejected("qc_backend_error", f"{type(exc).__name__}: {exc}") from exc


def synthesize_reference(
    target: np.ndarray,
    source: np.ndarray,
    region: EditRegion,
    *,
    inpainter: Inpainter | None = None,
    min_side: int = 16,
) -> np.ndarray:
    """Stage 3: the reference image (H,W,3) uint8; raises SampleRejected (blank / too small / backend)."""
    inpainter = inpainter or OpenCVInpainter()
    try:
        return make_reference(target, region, inpainter, source=source, min_side=min_side)
    except SampleRejected:
        raise
    except Exception as exc:  # noqa: BLE001
        raise SampleRejected("qc_backend_error", f"{type(exc).__name__}: {exc}") from exc


def judge_reference(
    reference: np.ndarray,
    target: np.ndarray,
    source: np.ndarray,
    region: EditRegion,
    prompt: str,
    *,
    judge: ReferenceJudge | None = None,
    threshold: float = DEFAULT_JUDGE_THRESHOLD,
) -> float:
    """Stage 4, semantic check: the judge's score of the reference against the target's edited
    region; raises SampleRejected(qc_judge_rejected) below `threshold`."""
    judge = judge or EmbeddingJudge()
    try:
        score = float(judge.score(reference, region_cutout(target, region, source=source), prompt, region.edit_type))
    except Exception as exc:  # noqa: BLE001
        raise SampleRejected("qc_backend_error", f"{type(exc).__name__}: {exc}") from exc
    if score < threshold:
        raise SampleRejected("qc_judge_rejected", f"judge score {score:.2f} < {threshold:.2f}", score)
    return score
