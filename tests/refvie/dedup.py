"""Test helper: the QC near-duplicate pass over samples held as dicts, the way the tests build them.

`assemble_quadruplets` keeps its samples as tuples; the tests find dicts easier to write and read,
so this applies `near_duplicates` to dicts exactly as QC applies it to tuples (drop the repeats,
record each kept sample's nearest-neighbour similarity in `dup_similarity`).
"""

from __future__ import annotations

import numpy as np

from kiwi_platform.refvie.near_duplicates import near_duplicates
from kiwi_platform.refvie.types import ImageEmbedder


def drop_near_duplicates(samples: list[dict], vectors: list[np.ndarray], threshold: float, rejected: list) -> list:
    """The kept samples (private `_` keys removed), dropped ones recorded in `rejected`."""
    drop, nearest = near_duplicates(lambda i, c: samples[i][c], len(samples), vectors, threshold, rejected)
    for i, sim in nearest.items():
        samples[i]["dup_similarity"] = sim
    return [{k: v for k, v in s.items() if not k.startswith("_")} for i, s in enumerate(samples) if i not in drop]


def drop_duplicates(samples: list[dict], embedder: ImageEmbedder, threshold: float, rejected: list) -> list:
    """`drop_near_duplicates` over samples carrying their image in `_embed`."""
    vectors = [embedder.embed([s["_embed"]])[0] for s in samples]
    return drop_near_duplicates(samples, vectors, threshold, rejected)
