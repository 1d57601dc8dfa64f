"""Reference clips (kiwi-clip/3): an original is not copied into the batch; its clip names it and
readers decode it in place (resizing one above the area cap), re-hashed on every read (docs/clips.md)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from kiwi_platform.ingestion.clip_table import normalize_batch
from kiwi_platform.ingestion.ingest_run import ingest_source
from kiwi_platform.ingestion.sources import open_source
from kiwi_platform.lib import shards
from kiwi_platform.media.clips import FORMAT_JPEG, FORMAT_REFERENCE, clip_header, read_clip
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import make_image, make_video

FRAMES = 9
SETTINGS = {"num_frames": FRAMES, "max_area": 96 * 80, "multiple": 32, "storage": "jpeg"}


def _dataset(folder: Path) -> Path:
    """Two video pairs at the target size (one 96x80, cropped to 96x64; one exactly 96x64), an image
    pair at size, and one pair too large (192x128: resized to 107x71, cropped to 96x64)."""
    make_video(folder / "a.mp4", FRAMES + 3, width=96, height=80, seed=1)
    make_video(folder / "a_tgt.mp4", FRAMES + 3, width=96, height=80, seed=2)
    make_video(folder / "b.mp4", FRAMES, width=96, height=64, seed=3)
    make_video(folder / "b_tgt.mp4", FRAMES, width=96, height=64, seed=4)
    make_image(folder / "i.png", width=96, height=64, seed=5)
    make_image(folder / "i_tgt.png", width=96, height=64, seed=6)
    make_video(folder / "big.mp4", FRAMES, width=192, height=128, seed=7)
    make_video(folder / "big_tgt.mp4", FRAMES, width=192, height=128, seed=8)
    with open(folder / "train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(
            [
                ("prompt", "src_video", "tgt_video", "ref_image"),
                ("make it red", "a.mp4", "a_tgt.mp4", ""),
                ("make it blue", "b.mp4", "b_tgt.mp4", ""),
                ("make it green", "i.png", "i_tgt.png", ""),
                ("make it grey", "big.mp4", "big_tgt.mp4", ""),
            ]
        )
    return folder


def _normalize(
    root: Path,
    folder: Path,
    *,
    copy_raw: bool = False,
    references: bool = True,
    resized: bool = True,
    ingest: bool = True,
):
    store = MediaStore(root=str(root))
    if ingest:
        out = ingest_source(open_source(folder / "train.csv"), store, "b", min_frames=FRAMES, copy_raw=copy_raw)
        assert out.quarantined == []
        store.write_table("b", "raw_edit_pairs", out.table)
    raw = store.read_table("b", "raw_edit_pairs")
    clip_dir = store.asset_dir("b", "normalized_clips") / "clips"
    clips = normalize_batch(
        raw, store, "b", clip_dir, SETTINGS, reference_originals=references, reference_resized=resized
    )
    assert clips.rejected == []
    return store, clips


def _decoded(path: Path, crop: tuple[int, int] | None = None, resize: tuple[int, int] | None = None) -> np.ndarray:
    """The video's first FRAMES frames as RGB, decoded with PyAV alone, scaled to `resize` (w, h;
    swscale's area filter) and center-cropped to `crop` (h, w)."""
    with av.open(str(path)) as container:
        decoded = (f.reformat(*resize, interpolation="AREA") if resize else f for f in container.decode(video=0))
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(FRAMES), decoded)]
    out = np.stack(frames)
    if crop:
        top, left = (out.shape[1] - crop[0]) // 2, (out.shape[2] - crop[1]) // 2
        out = out[:, top : top + crop[0], left : left + crop[1]]
    return out


def _clips(store: MediaStore, clips) -> dict[str, str]:
    """{original file name: clip reference} for every clip of the table."""
    table = clips.table.sort_values("row")
    names = ["a", "b", "i", "big"]
    out = {}
    for name, (_, rec) in zip(names, table.iterrows()):
        out[name] = str(store.root_path / rec["src_clip"])
        out[f"{name}_tgt"] = str(store.root_path / rec["tgt_clip"])
    return out


def test_originals_are_referenced_and_read_back_exactly(tmp_path: Path) -> None:
    """Every local original gets a header-only clip (a few hundred bytes instead of the frames), and
    reading one gives exactly the frames of the original as decoded, cropped to sides in 32s; one
    above the area cap reads back as the original scaled by swscale's area filter, then cropped."""
    folder = _dataset(tmp_path / "dataset")
    store, clips = _normalize(tmp_path / "data", folder)
    where = _clips(store, clips)
    for name in ("a", "a_tgt", "b", "b_tgt", "i", "i_tgt", "big", "big_tgt"):
        header = clip_header(where[name])
        assert header["format"] == FORMAT_REFERENCE and header["resized"] is name.startswith("big")
        assert header["original"]["rel"] == f"{name}.{'png' if name.startswith('i') else 'mp4'}"
        assert len(shards.read_bytes(where[name])) < 1024
    assert read_clip(where["big"]).shape == (FRAMES, 64, 96, 3)
    np.testing.assert_array_equal(read_clip(where["big_tgt"]), _decoded(folder / "big_tgt.mp4", (64, 96), (107, 71)))
    np.testing.assert_array_equal(read_clip(where["a"]), _decoded(folder / "a.mp4", crop=(64, 96)))
    np.testing.assert_array_equal(read_clip(where["b_tgt"]), _decoded(folder / "b_tgt.mp4"))
    np.testing.assert_array_equal(read_clip(where["a"], [7, 0, 7]), _decoded(folder / "a.mp4", (64, 96))[[7, 0, 7]])
    image = np.asarray(Image.open(folder / "i.png").convert("RGB"))
    np.testing.assert_array_equal(read_clip(where["i"]), image[None])
    with pytest.raises(IndexError):
        read_clip(where["b"], [FRAMES])


def test_changed_or_vanished_original_fails_the_read_naming_it(tmp_path: Path) -> None:
    """An original edited or deleted after ingestion never gives other pixels under the old hash:
    the read fails with one line naming the original."""
    folder = _dataset(tmp_path / "dataset")
    store, clips = _normalize(tmp_path / "data", folder)
    where = _clips(store, clips)
    make_video(folder / "a.mp4", FRAMES + 3, width=96, height=80, seed=9)  # same size, other pixels
    with pytest.raises(ValueError, match=r"a\.mp4 changed since ingestion"):
        read_clip(where["a"])
    (folder / "b.mp4").unlink()
    with pytest.raises(ValueError, match=r"b\.mp4 vanished since ingestion"):
        read_clip(where["b"], [0])
    assert read_clip(where["a_tgt"]).shape == (FRAMES, 64, 96, 3)  # the others still read


def test_reruns_reuse_and_switching_the_settings_rebuilds(tmp_path: Path) -> None:
    """A rerun decodes nothing and writes the same bytes; turning references off rebuilds every
    clip as a copy, copying resized originals rebuilds only those, and going back to the defaults
    gives back the first run's exact shards."""
    folder = _dataset(tmp_path / "dataset")
    store, first = _normalize(tmp_path / "data", folder)
    clip_dir = store.asset_dir("b", "normalized_clips") / "clips"
    shard_bytes = {p.name: p.read_bytes() for p in clip_dir.glob("shard-*.zip")}
    _, again = _normalize(tmp_path / "data", folder, ingest=False)
    assert (again.decoded, again.reused) == (0, 8)
    _, copies = _normalize(tmp_path / "data", folder, ingest=False, references=False)
    assert (copies.decoded, copies.reused) == (8, 0)
    where = _clips(store, copies)
    assert clip_header(where["a"])["format"] == FORMAT_JPEG
    _, back = _normalize(tmp_path / "data", folder, ingest=False)
    assert back.decoded == 8
    assert {p.name: p.read_bytes() for p in clip_dir.glob("shard-*.zip")} == shard_bytes
    _, at_size = _normalize(tmp_path / "data", folder, ingest=False, resized=False)
    assert (at_size.decoded, at_size.reused) == (2, 6)  # only the pair above the area cap
    where = _clips(store, at_size)
    assert [clip_header(where[n])["format"] for n in ("a", "big")] == [FORMAT_REFERENCE, FORMAT_JPEG]
    _, again = _normalize(tmp_path / "data", folder, ingest=False, resized=False)
    assert (again.decoded, again.reused) == (0, 8)
    _, back = _normalize(tmp_path / "data", folder, ingest=False)
    assert back.decoded == 2
    assert {p.name: p.read_bytes() for p in clip_dir.glob("shard-*.zip")} == shard_bytes
    assert back.table.equals(first.table)


def test_a_resized_reference_reads_what_its_copy_holds(tmp_path: Path) -> None:
    """Referencing an original above the area cap changes how its pixels are kept, not which: the
    reference reads as the JPEG copy made from the same original reads, up to the JPEG coding."""
    folder = _dataset(tmp_path / "dataset")
    store_ref, refs = _normalize(tmp_path / "refs", folder)
    store_copy, copies = _normalize(tmp_path / "copies", folder, resized=False)
    reference, copy = _clips(store_ref, refs)["big"], _clips(store_copy, copies)["big"]
    assert clip_header(copy)["format"] == FORMAT_JPEG and clip_header(reference)["format"] == FORMAT_REFERENCE
    read_ref, read_copy = read_clip(reference).astype(float), read_clip(copy).astype(float)
    assert read_ref.shape == read_copy.shape == (FRAMES, 64, 96, 3)
    assert np.abs(read_ref - read_copy).mean() < 3.0  # q95 JPEG of random-noise frames


def test_same_batch_elsewhere_gives_the_same_clip_bytes(tmp_path: Path) -> None:
    """A reference clip names its original relative to the batch's base folder, never by absolute
    path: the same dataset ingested from another folder into another store gives identical shards."""
    one = _dataset(tmp_path / "one" / "dataset")
    two = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(one, two)
    store_a, _ = _normalize(tmp_path / "one" / "data", one)
    store_b, clips_b = _normalize(tmp_path / "two" / "data", two)
    dir_a = store_a.asset_dir("b", "normalized_clips") / "clips"
    dir_b = store_b.asset_dir("b", "normalized_clips") / "clips"
    assert sorted(p.name for p in dir_a.glob("shard-*.zip")) == sorted(p.name for p in dir_b.glob("shard-*.zip"))
    for shard in dir_a.glob("shard-*.zip"):
        assert shard.read_bytes() == (dir_b / shard.name).read_bytes()
    np.testing.assert_array_equal(read_clip(_clips(store_b, clips_b)["b"]), _decoded(two / "b.mp4"))


def test_copied_raw_is_referenced_inside_the_batch(tmp_path: Path) -> None:
    """With copy_raw the reference names the batch's own copy, so the clip still reads after the
    original is deleted (the reason to copy)."""
    folder = _dataset(tmp_path / "dataset")
    store, clips = _normalize(tmp_path / "data", folder, copy_raw=True)
    where = _clips(store, clips)
    header = clip_header(where["b"])
    assert header["format"] == FORMAT_REFERENCE and header["original"]["batch_file"].startswith("raw_edit_pairs/media/")
    expected = _decoded(folder / "b.mp4")
    shutil.rmtree(folder)
    np.testing.assert_array_equal(read_clip(where["b"]), expected)
