"""Memory per row of the RefVIE driver: a batch of 10,000 pairs must fit where a batch of 1,000 does.

Issue 17's target is peak RSS at 10,000 pairs <= 1.2x that at 1,000, which leaves about 10 KB per
pair for everything a stage keeps across rows. These tests run the real stage functions
(`synthesize_batch`, `assemble_quadruplets`, in this process) over K and 4K rows and bound the
growth of Python's traced peak per extra row far below one decoded frame (96x160x3 = 46 KB here;
a whole clip is 9 of them): a stage that holds a frame, a clip or a whole-batch matrix per row
fails, one that keeps ids, hashes, scalars and a small embedding passes. The same measure is
shown to catch a row function whose driver keeps one image per row, so the bound can fail.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiwi_platform.engine import EngineSettings, stream_rows
from kiwi_platform.engine.frames import TableRows
from kiwi_platform.refvie.assembly import QualitySettings, assemble_quadruplets
from kiwi_platform.refvie.pipeline import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_JUDGE_THRESHOLD
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import ground_batch
from kiwi_platform.refvie.stage_support import backend_spec
from kiwi_platform.synth import generate
from kiwi_platform.synth.clip_rows import normalized_rows

N, FRAMES, HEIGHT, WIDTH = 6, 9, 96, 160
FRAME_BYTES = HEIGHT * WIDTH * 3  # one decoded RGB frame: 46,080 bytes
BOUND = 20_000  # bytes of traced peak per extra row, far below one frame
K = 24
LOCAL = EngineSettings(engine="local")


def traced_peak(run: Callable[[], object]) -> int:
    """Peak bytes Python allocated while `run()` ran (its inputs were made before, so they do not count)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def per_row_growth(run: Callable[[int], object], k: int = K) -> float:
    """Growth of the traced peak per extra row from `k` to `4k` rows, after a warm-up run (imports, caches)."""
    run(k)
    small = traced_peak(lambda: run(k))
    large = traced_peak(lambda: run(4 * k))
    return (large - small) / (3 * k)


def tiled(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` rows cycling over `table`'s pairs, each with its own pair id and manifest row."""
    out = table.iloc[np.arange(n) % len(table)].reset_index(drop=True).copy()
    out["pair_id"] = [f"{p}-{i:05d}" for i, p in enumerate(out["pair_id"])]
    out["row"] = np.arange(1, n + 1)
    return out


@pytest.fixture(scope="module")
def batch(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path
) -> tuple[Path, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(root, edit_regions table, reference_images table, normalized clips table) of a few synthetic
    pairs, through the real stages."""
    root = tmp_path_factory.mktemp("memory")
    out = root / "synth"
    generate(out, N, seed=5, frames=FRAMES, height=HEIGHT, width=WIDTH, image_share=0.0, demo_dir=demo_dir)
    clips = pd.DataFrame([row for _, row in normalized_rows(out, root, height=HEIGHT, width=WIDTH)])
    regions, _ = ground_batch(
        clips,
        root,
        root / "regions",
        grounder=backend_spec("grounder", "diff"),
        segmenter=backend_spec("segmenter", "diff"),
        engine=LOCAL,
    )
    refs, _, _ = synthesize_batch(regions, root, root / "refs", inpainter=backend_spec("inpainter", "opencv"))
    assert len(refs) >= 3, "the fixture needs a few pairs that pass grounding"
    return root, regions, refs, clips


def test_reference_synthesis_keeps_no_image_per_row(batch, tmp_path: Path) -> None:
    """`reference_images` at 4x the pairs peaks less than 20 KB higher per extra pair: the driver keeps
    a reference's path, hash and origin per pair, never its decoded clip or image, so a 10,000-pair
    batch runs in about the memory of a 1,000-pair one."""
    root, regions, _, _ = batch

    def run(n: int) -> object:
        folder = tmp_path / f"refs-{n}"
        return synthesize_batch(
            tiled(regions, n), root, folder, inpainter=backend_spec("inpainter", "opencv"), engine=LOCAL
        )

    growth = per_row_growth(run)
    assert growth < BOUND, f"reference_images keeps {growth:,.0f} bytes per row (a frame is {FRAME_BYTES:,})"


def test_grounding_keeps_no_mask_or_clip_per_row(batch, tmp_path: Path) -> None:
    """`edit_regions` at 4x the pairs peaks less than 20 KB higher per extra pair: the driver reads the
    clips table a window at a time and keeps the region columns and the staged mask's path per pair,
    never a decoded clip or mask, until it packs the masks into shards."""
    root, _, _, clips = batch

    def run(n: int) -> object:
        grounder, segmenter = backend_spec("grounder", "diff"), backend_spec("segmenter", "diff")
        return ground_batch(
            tiled(clips, n), root, tmp_path / f"regions-{n}", grounder=grounder, segmenter=segmenter, engine=LOCAL
        )

    growth = per_row_growth(run)
    assert growth < BOUND, f"edit_regions keeps {growth:,.0f} bytes per row (a frame is {FRAME_BYTES:,})"


def test_quality_control_keeps_no_image_per_row(batch) -> None:
    """`quadruplets` (QC, judge, dedup) at 4x the pairs peaks less than 20 KB higher per extra pair: per
    pair the driver keeps the table values and a 1.4 KB embedding, and the near-duplicate pass never
    holds an image, so its memory does not grow with decoded clips."""
    root, _, refs, _ = batch
    settings = QualitySettings(16, 8.0, DEFAULT_JUDGE_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD)

    def run(n: int) -> object:
        return assemble_quadruplets(
            tiled(refs, n),
            root,
            judge=backend_spec("judge", "embedding"),
            embedder=backend_spec("embedder", "phash"),
            settings=settings,
            engine=LOCAL,
        )

    growth = per_row_growth(run)
    assert growth < BOUND, f"quadruplets keeps {growth:,.0f} bytes per row (a frame is {FRAME_BYTES:,})"


def _decode(rec: dict) -> dict:
    """A row function shaped like the stages': a decoded frame plus a few scalars per row."""
    return {"pair_id": rec["pair_id"], "frame": np.full((HEIGHT, WIDTH, 3), rec["row"] % 255, np.uint8)}


def test_the_measure_catches_a_driver_that_keeps_a_frame_per_row() -> None:
    """The bound can fail: a driver that keeps each row's frame grows by about a frame per row and is
    over it, while the same stream keeping only the pair id is under it (so the stage tests above
    would catch a reintroduced leak such as a numpy view of the clip kept for dedup)."""
    table = pd.DataFrame({"pair_id": [f"p{i}" for i in range(4 * K)], "row": range(4 * K)})

    def keeping(keep: Callable[[dict], object]) -> Callable[[int], object]:
        def run(n: int) -> list:
            return [keep(o.value) for o in stream_rows(_decode, TableRows(table.head(n)), settings=LOCAL)]

        return run

    assert per_row_growth(keeping(lambda v: v["frame"])) > FRAME_BYTES * 0.9
    assert per_row_growth(keeping(lambda v: v["pair_id"])) < BOUND


def _embeddings(n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` unit 340-d float32 vectors (the phash embedder's size), with every tenth a near copy of an earlier one."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, 340)).astype(np.float32)
    emb[10::10] = emb[: len(emb[10::10])] + 0.05 * rng.standard_normal((len(emb[10::10]), 340)).astype(np.float32)
    return list(emb / np.linalg.norm(emb, axis=1, keepdims=True))


def _samples(n: int) -> list[dict]:
    return [
        {"ref_image": "r.png", "row": i + 1, "pair_id": f"p{i}", "tgt_clip": "t", "dup_similarity": 0.0}
        for i in range(n)
    ]


def test_near_duplicate_pass_memory_is_not_quadratic() -> None:
    """The near-duplicate pass at 10,000 samples peaks less than 20 KB higher per extra sample than at
    2,500: it holds a block of the similarity matrix, not all N x N of it (800 MB at 10,000 in
    float64), so QC's peak no longer grows with the square of the batch."""
    from tests.refvie.dedup import drop_near_duplicates

    def run(n: int) -> object:
        return drop_near_duplicates(_samples(n), _embeddings(n), DEFAULT_DUPLICATE_THRESHOLD, [])

    growth = per_row_growth(run, k=2500)
    assert growth < BOUND, f"the near-duplicate pass grows by {growth:,.0f} bytes per sample"


def test_blocked_similarities_give_the_same_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cutting the similarity matrix into row blocks changes no decision: the same samples are dropped
    as near-duplicates of the same earlier ones, with the same nearest-neighbour similarities (to
    float rounding), as with the whole matrix at once."""
    from kiwi_platform.refvie import quality
    from tests.refvie.dedup import drop_near_duplicates

    n = 300
    whole_rejected: list = []
    whole = drop_near_duplicates(_samples(n), _embeddings(n, seed=3), DEFAULT_DUPLICATE_THRESHOLD, whole_rejected)
    monkeypatch.setattr(quality, "SIMILARITY_ELEMENTS", n * 7)  # blocks of 7 rows
    blocked_rejected: list = []
    blocked = drop_near_duplicates(_samples(n), _embeddings(n, seed=3), DEFAULT_DUPLICATE_THRESHOLD, blocked_rejected)
    assert [r.row for r in blocked_rejected] == [r.row for r in whole_rejected]
    assert [r.message for r in blocked_rejected] == [r.message for r in whole_rejected]
    assert len(whole_rejected) >= n // 20, "the set must hold near-duplicates for this to test anything"
    assert [s["pair_id"] for s in blocked] == [s["pair_id"] for s in whole]
    np.testing.assert_allclose([s["dup_similarity"] for s in blocked], [s["dup_similarity"] for s in whole], rtol=1e-6)
