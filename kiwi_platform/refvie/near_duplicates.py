"""The near-duplicate pass of QC: which samples repeat an earlier one, over the whole batch.

Why a module of its own: it is the one part of stage 4 that needs every sample at once (each
sample's embedding), so it runs in the driver after the per-pair QC, and its memory is what grew
with the square of the batch (an N x N similarity matrix, 0.3-0.8 GB at 10,000 pairs). Here the
matrix is read a block of rows at a time (`quality.similarity_rows`) and the samples are reached
through an accessor, so the caller keeps them in whatever compact form it likes (QC: tuples).
"""

from __future__ import annotations

import numpy as np

from kiwi_platform.lib.quarantine import QuarantineRecord
from kiwi_platform.refvie.quality import find_near_duplicates, similarity_rows


def near_duplicates(
    get, count: int, vectors: np.ndarray | list[np.ndarray], threshold: float, rejected: list
) -> tuple[dict[int, tuple[int, float]], dict[int, float]]:
    """The near-duplicate pass over `count` samples whose column values `get(i, column)` returns and
    whose embeddings are `vectors` (a matrix, row i = sample i, or a list of vectors):
    (dropped sample -> (the earlier sample it repeats, similarity), sample -> nearest-neighbour
    similarity), each drop recorded in `rejected` (`qc_near_duplicate`). References are compared
    with references and targets with targets; the similarity matrix a block of rows at a time."""
    drop: dict[int, tuple[int, float]] = {}
    nearest: dict[int, float] = {}
    for has_ref in (True, False):
        idx = [i for i in range(count) if bool(get(i, "ref_image")) == has_ref]
        if len(idx) < 2:
            continue
        emb = vectors[idx] if isinstance(vectors, np.ndarray) else np.stack([vectors[i] for i in idx])
        for dup, of, sim in find_near_duplicates(emb, threshold):
            drop[idx[dup]] = (idx[of], float(sim))
        for start, sims in similarity_rows(emb):
            for offset, row in enumerate(sims):
                row[start + offset] = -1.0  # not its own neighbour
                nearest[idx[start + offset]] = float(max(0.0, row.max()))
    for i, (of, sim) in sorted(drop.items()):
        message = f"near-duplicate of row {get(of, 'row')} (similarity {sim:.3f})"
        path = get(i, "ref_image") or get(i, "tgt_clip")
        rejected.append(
            QuarantineRecord(
                int(get(i, "row")), "qc_near_duplicate", message, path, "quadruplets", sim, get(i, "pair_id")
            )
        )
    return drop, nearest
