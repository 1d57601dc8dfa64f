"""The CLIP embedder loads a local checkpoint and returns unit-length image embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.refvie.backends.clip_embedder import ClipImageEmbedder
from kiwi_platform.refvie.types import ImageEmbedder
from tests.refvie.backends.tiny_checkpoints import build_tiny_clip


def test_embeddings_are_normalised_and_identical_images_match(clip_dir: Path, frame_pair) -> None:
    """(N, D) float32 unit vectors; the same image twice has cosine 1, a different image less."""
    source, target = frame_pair
    embedder = ClipImageEmbedder(clip_dir)
    assert isinstance(embedder, ImageEmbedder)
    noise = np.random.default_rng(0).integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    emb = embedder.embed([source[0], source[0].copy(), noise, target[0][..., 0]])
    assert emb.shape == (4, 16) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] == pytest.approx(1.0, abs=1e-5)
    assert emb[0] @ emb[2] < 0.999
    assert embedder.embed([]).shape == (0, 16)


def test_vision_only_checkpoint_gives_the_same_kind_of_output(tmp_path: Path, frame_pair) -> None:
    """A CLIPVisionModelWithProjection folder works too, batched in chunks with the same result as one batch."""
    folder = build_tiny_clip(tmp_path / "clip-vision", vision_only=True)
    images = list(frame_pair[0]) + list(frame_pair[1])
    one_batch = ClipImageEmbedder(folder, batch_size=32).embed(images)
    chunked = ClipImageEmbedder(folder, batch_size=4).embed(images)
    assert one_batch.shape == (6, 16)
    assert np.allclose(one_batch, chunked, atol=1e-5)


def test_wrong_model_folder_is_a_one_line_error(clip_dir: Path, sam_dir: Path, tmp_path: Path) -> None:
    """Pointing the CLIP backend at another model type, or at an empty folder, says so in one line."""
    with pytest.raises(KiwiUserError, match="holds a 'sam' model") as info:
        ClipImageEmbedder(sam_dir)
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(KiwiUserError, match="lacks config.json"):
        ClipImageEmbedder(tmp_path / "empty")
