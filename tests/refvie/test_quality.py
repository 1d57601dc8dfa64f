"""Quality control: embeddings, near-duplicate removal, the default judge, the size filter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiwi_platform.refvie import pipeline
from kiwi_platform.refvie.quality import (
    EmbeddingJudge,
    PerceptualHashEmbedder,
    find_near_duplicates,
    reference_size_ok,
)
from kiwi_platform.refvie.references import region_cutout
from kiwi_platform.refvie.types import EditRegion, ImageEmbedder, ReferenceJudge


@pytest.fixture(scope="module")
def references(analysed) -> list[np.ndarray]:
    return [
        pipeline.synthesize_reference(p.target, p.source, r, min_side=8)
        for p, r in analysed
        if isinstance(r, EditRegion)
    ]


def _copies(image: np.ndarray) -> list[np.ndarray]:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
    jpeg = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    shifted = cv2.warpAffine(image, np.float32([[1, 0, 2], [0, 1, 1]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    brighter = np.clip(image.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    return [jpeg, shifted, brighter]


def test_embeddings_are_unit_vectors(references):
    """The default embedder honours the ImageEmbedder contract: one L2-normalised row per image."""
    emb = PerceptualHashEmbedder()
    assert isinstance(emb, ImageEmbedder)
    vectors = emb.embed(references)
    assert vectors.shape[0] == len(references)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_injected_copies_are_found_and_distinct_references_kept(references):
    """Re-encoded, shifted and brightened copies are flagged as duplicates of their original
    (precision and recall >= 0.9); the distinct originals are not flagged."""
    images, family = list(references), list(range(len(references)))
    for i in range(0, len(references), 2):
        for copy in _copies(references[i]):
            images.append(copy)
            family.append(i)
    found = find_near_duplicates(PerceptualHashEmbedder().embed(images), pipeline.DEFAULT_DUPLICATE_THRESHOLD)
    copies = set(range(len(references), len(images)))
    flagged = {i for i, _, _ in found}
    correct = {i for i, j, _ in found if i in copies and family[i] == family[j]}
    assert len(correct) / max(len(flagged), 1) >= 0.9
    assert len(correct) / len(copies) >= 0.9
    assert not flagged & set(range(len(references)))


def test_duplicates_keep_the_first_occurrence():
    """The earlier sample is kept, later copies point at it, and the result does not depend on run."""
    emb = np.array([[1, 0], [0, 1], [1, 0.01], [0.01, 1], [1, 0]], np.float32)
    found = find_near_duplicates(emb, 0.99)
    assert [(i, j) for i, j, _ in found] == [(2, 0), (3, 1), (4, 0)]
    assert found == find_near_duplicates(emb, 0.99)
    assert find_near_duplicates(emb, 1.01) == []
    assert find_near_duplicates(np.zeros((0, 4)), 0.9) == []


def test_judge_prefers_the_matching_region(analysed, references):
    """The judge scores a reference higher against its own edited region than against another pair's."""
    judge = EmbeddingJudge()
    assert isinstance(judge, ReferenceJudge)
    regions = [(p, r) for p, r in analysed if isinstance(r, EditRegion)]
    cutouts = [region_cutout(p.target, r, source=p.source) for p, r in regions]
    wins = 0
    for k, ((p, r), ref) in enumerate(zip(regions, references)):
        own = judge.score(ref, cutouts[k], p.prompt, r.edit_type)
        other = judge.score(ref, cutouts[(k + 6) % len(cutouts)], p.prompt, r.edit_type)  # same type, other pair
        assert 0.0 <= own <= 1.0 and 0.0 <= other <= 1.0
        wins += own > other
        assert own >= pipeline.DEFAULT_JUDGE_THRESHOLD, p.record["pair"]
    assert wins >= 0.8 * len(regions)


def test_judge_rejects_a_wrong_reference(analysed):
    """A reference that shows something else entirely (a flat grey square) ends in qc_judge_rejected."""
    p, r = next((p, r) for p, r in analysed if p.edit_type == "local_add")
    wrong = np.full((40, 40, 3), 255, np.uint8)
    wrong[10:30, 10:30] = 128
    with pytest.raises(Exception) as err:
        pipeline.judge_reference(wrong, p.target, p.source, r, p.prompt)
    assert getattr(err.value, "reason", None) == "qc_judge_rejected"


def test_reference_size_filter():
    """Degenerate sizes are dropped: missing, tiny, or sliver-shaped references."""
    assert reference_size_ok(np.zeros((32, 48, 3), np.uint8))
    assert not reference_size_ok(None)
    assert not reference_size_ok(np.zeros((8, 48, 3), np.uint8))
    assert not reference_size_ok(np.zeros((20, 400, 3), np.uint8))
    assert reference_size_ok(np.zeros((8, 12, 3), np.uint8), min_side=8)


def test_batch_dedup_drops_later_copies_and_records_them(references):
    """The quadruplets asset's dedup keeps the earlier original, drops a later re-encoded copy with a
    `qc_near_duplicate` record naming the original's row, and compares references only with references."""
    from tests.refvie.dedup import drop_duplicates

    copy = _copies(references[0])[0]
    samples = [
        {
            "row": i + 1,
            "pair_id": f"p{i}",
            "ref_image": f"r{i}.png",
            "tgt_clip": f"t{i}",
            "_embed": img,
            "dup_similarity": 0.0,
        }
        for i, img in enumerate(references[:4] + [copy])
    ]
    samples.append(
        {"row": 9, "pair_id": "no-ref", "ref_image": "", "tgt_clip": "t9", "_embed": copy, "dup_similarity": 0.0}
    )
    rejected = []
    kept = drop_duplicates(samples, PerceptualHashEmbedder(), pipeline.DEFAULT_DUPLICATE_THRESHOLD, rejected)
    assert [s["pair_id"] for s in kept] == ["p0", "p1", "p2", "p3", "no-ref"]
    assert [(r.row, r.reason, r.pair_id) for r in rejected] == [(5, "qc_near_duplicate", "p4")]
    assert "row 1" in rejected[0].message
    assert kept[0]["dup_similarity"] >= pipeline.DEFAULT_DUPLICATE_THRESHOLD
    assert drop_duplicates([], PerceptualHashEmbedder(), 0.9, []) == []
