"""Normalized clips live in a few shard files (docs/shards.md): random access by member, the same
bytes and hashes as the per-clip files they replace, reuse across reruns, byte-identical shards."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiwi_platform.ingestion.clip_table import clip_name, normalize_batch
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.raw_table import raw_table, store_accepted_media
from kiwi_platform.ingestion.validate import validate_manifest
from kiwi_platform.lib import shards
from kiwi_platform.media.clips import FORMAT_JPEG, FORMAT_VIDEO, clip_header, read_clip, write_clip
from kiwi_platform.resources.store import MediaStore
from tests.ingestion.ingest_media import MIN_FRAMES, Kit, pattern

SETTINGS = {"num_frames": 4, "max_area": 10**9, "multiple": 32}


def _clips(folder: Path, count: int) -> dict[str, Path]:
    """`count` small distinct clip files, by member name."""
    out = {}
    for i in range(count):
        path = folder / f"c{i:02d}.kclip"
        write_clip(path, [pattern(j, 64, 32, i) for j in range(3)], fps=8.0, meta={"n": i})
        out[path.name] = path
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_shard_members_read_like_the_files_they_replace(tmp_path: Path) -> None:
    """A clip read through `<shard>#<name>` gives the same header, frames and sha256 as the clip file, so
    every reader and every `*_clip_sha256` column works on sharded and unsharded batches alike."""
    sources = _clips(tmp_path / "loose", 5)
    placed = shards.write_shards(tmp_path / "packed", sources, per_shard=2)
    assert sorted({p.name for p in placed.values()}) == ["shard-00000.zip", "shard-00001.zip", "shard-00002.zip"]
    for name, path in sources.items():
        ref = shards.member_ref(placed[name], name)
        assert shards.exists(ref) and shards.holder(ref) == placed[name]
        assert shards.sha256(ref) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert shards.read_bytes(ref) == path.read_bytes()
        assert clip_header(ref) == clip_header(path)
        np.testing.assert_array_equal(read_clip(ref, [2, 0]), read_clip(path, [2, 0]))
    with zipfile.ZipFile(placed["c00.kclip"]) as zf:
        assert [i.filename for i in zf.infolist()] == ["c00.kclip", "c01.kclip"]
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_a_missing_member_or_shard_is_a_clear_error(tmp_path: Path) -> None:
    """Asking for a member a shard lacks, or a shard that is gone, raises FileNotFoundError naming the
    shard, and `exists` says no: integrity checks report "missing" instead of crashing."""
    placed = shards.write_shards(tmp_path, _clips(tmp_path / "loose", 1), per_shard=4)
    shard = placed["c00.kclip"]
    with pytest.raises(FileNotFoundError, match="no member 'nope.kclip'") as err:
        read_clip(shards.member_ref(shard, "nope.kclip"))
    assert err.value.filename == str(shard)
    assert not shards.exists(shards.member_ref(shard, "nope.kclip"))
    assert not shards.exists(shards.member_ref(tmp_path / "gone.zip", "c00.kclip"))
    with pytest.raises(FileNotFoundError):
        clip_header(shards.member_ref(tmp_path / "gone.zip", "c00.kclip"))


def test_same_members_give_byte_identical_shards(tmp_path: Path) -> None:
    """Packing the same clips twice, in any order and from files or from existing shards, gives the same
    shard bytes: a rerun is not a new DVC version."""
    sources = _clips(tmp_path / "loose", 4)
    shards.write_shards(tmp_path / "a", sources, per_shard=3)
    shards.write_shards(tmp_path / "b", dict(reversed(list(sources.items()))), per_shard=3)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    shards.write_shards(tmp_path / "a", shards.index(tmp_path / "a"), per_shard=3)  # repack from itself
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def _raw(kit: Kit, write_manifest: Callable[..., Path], store: MediaStore, rows: list[tuple[str, str, str, str]]):
    result = validate_manifest(read_manifest(write_manifest(rows)), min_frames=MIN_FRAMES)
    store_accepted_media(result.accepted, store, store.root_path / "media")
    return raw_table(result.accepted, "b", "0" * 64)


def test_normalized_clips_are_sharded_and_reused_on_rerun(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """A batch's clips land in one shard (not one file per clip); the table refers to each as
    `<shard>#<clip>` with the member's sha256; a rerun decodes nothing, reuses every clip from the shard
    and rewrites byte-identical shards; no staging folder is left behind."""
    store = MediaStore(root=str(tmp_path / "data"))
    raw = _raw(kit, write_manifest, store, [("p1", "a.mp4", "a_tgt.mp4", ""), ("p2", "b.mp4", "b_tgt.mp4", "")])
    clip_dir = store.root_path / "clips"
    first = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    assert first.rejected == [] and (first.decoded, first.reused) == (4, 0)
    assert [p.name for p in clip_dir.iterdir()] == ["shard-00000.zip"]
    for rec in first.table.to_dict("records"):
        for role in ("src", "tgt"):
            ref = rec[f"{role}_clip"]
            assert ref == f"clips/shard-00000.zip#{clip_name(rec[f'{role}_sha256'], SETTINGS)}"
            assert shards.sha256(store.root_path / ref) == rec[f"{role}_clip_sha256"]
            assert clip_header(store.root_path / ref)["frames"] == 4
    before = _files(clip_dir)
    again = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    assert (again.decoded, again.reused) == (0, 4)
    assert again.table.equals(first.table) and _files(clip_dir) == before


def test_clip_storage_choice_is_kept_and_switching_it_rebuilds_the_clips(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """`clip_storage: video` stores every clip as kiwi-clip/2 (near-lossless H.264); a rerun
    with the same choice reuses them all, and switching back to JPEG rebuilds every clip instead of
    serving the other format under the same name."""
    store = MediaStore(root=str(tmp_path / "data"))
    raw = _raw(kit, write_manifest, store, [("p1", "a.mp4", "a_tgt.mp4", ""), ("p2", "b.mp4", "b_tgt.mp4", "")])
    clip_dir = store.root_path / "clips"
    video = {**SETTINGS, "storage": "video"}
    first = normalize_batch(raw, store, "b", clip_dir, video)
    refs = [store.root_path / r for r in first.table[["src_clip", "tgt_clip"]].to_numpy().ravel()]
    assert {clip_header(r)["format"] for r in refs} == {FORMAT_VIDEO}
    again = normalize_batch(raw, store, "b", clip_dir, video)
    assert (again.decoded, again.reused) == (0, 4)
    back = normalize_batch(raw, store, "b", clip_dir, {**SETTINGS, "storage": "jpeg"})
    assert (back.decoded, back.reused) == (4, 0)
    assert {clip_header(store.root_path / r)["format"] for r in back.table["src_clip"]} == {FORMAT_JPEG}


def test_rerun_reuses_loose_clips_of_the_old_layout_and_leaves_foreign_files(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """A batch normalized before shards existed (one `.kclip` per clip) is migrated on its next run: the
    loose clips are reused (not decoded again), packed into a shard and removed; a file the platform did
    not write there is left alone, and a clip no row needs any more is dropped from the shards."""
    store = MediaStore(root=str(tmp_path / "data"))
    raw = _raw(kit, write_manifest, store, [("p1", "a.mp4", "a_tgt.mp4", ""), ("p2", "b.mp4", "b_tgt.mp4", "")])
    clip_dir = store.root_path / "clips"
    sharded = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    for name in shards.members(clip_dir / "shard-00000.zip"):  # rebuild the old layout from the same clips
        (clip_dir / name).write_bytes(shards.read_bytes(clip_dir / f"shard-00000.zip#{name}"))
    (clip_dir / "shard-00000.zip").unlink()
    (clip_dir / "notes.txt").write_text("mine")
    migrated = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    assert (migrated.decoded, migrated.reused) == (0, 4)
    assert migrated.table.equals(sharded.table)
    assert sorted(p.name for p in clip_dir.iterdir()) == ["notes.txt", "shard-00000.zip"]
    one = normalize_batch(raw.iloc[:1], store, "b", clip_dir, SETTINGS)
    assert len(shards.members(clip_dir / "shard-00000.zip")) == 2 and one.reused == 2


def test_rerun_after_a_kill_while_packing_clears_its_leftovers(
    kit: Kit, write_manifest: Callable[..., Path], tmp_path: Path
) -> None:
    """What a run killed while packing leaves (a staging folder of new clips, a half-written hidden temp
    shard) is cleared by the next run, which gives the uninterrupted run's table and shard bytes."""
    store = MediaStore(root=str(tmp_path / "data"))
    raw = _raw(kit, write_manifest, store, [("p1", "a.mp4", "a_tgt.mp4", "")])
    clip_dir = store.root_path / "clips"
    clean = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    expected = _files(clip_dir)
    (clip_dir / ".staging").mkdir()
    (clip_dir / ".staging" / "half.kclip").write_bytes(b"PK\x03\x04 cut short")
    (clip_dir / ".shard-00000.k1ll3d.zip").write_bytes(b"PK\x03\x04 cut short")
    rerun = normalize_batch(raw, store, "b", clip_dir, SETTINGS)
    assert rerun.table.equals(clean.table)
    assert _files(clip_dir) == expected and not (clip_dir / ".staging").exists()


def test_integrity_checks_see_a_changed_or_missing_member(tmp_path: Path) -> None:
    """`check_files` (the blocking `*_intact` checks, training manifests) hashes the member a reference
    names: an intact one passes, one changed byte inside the shard is "changed", a member or shard that
    is gone is "missing"."""
    from kiwi_platform.lib.integrity import check_files

    placed = shards.write_shards(tmp_path / "clips", _clips(tmp_path / "loose", 2), per_shard=8)
    shard = placed["c00.kclip"]
    refs = [shards.member_ref(shard.relative_to(tmp_path), n) for n in ("c00.kclip", "c01.kclip")]
    digests = [shards.sha256(tmp_path / r) for r in refs]
    table = pd.DataFrame({"row": [1, 2], "clip": refs, "clip_sha256": digests})
    assert check_files(table, tmp_path, [("clip", "clip_sha256")]) == (2, [])
    data = bytearray(shard.read_bytes())
    at = bytes(data).index(shards.read_bytes(tmp_path / refs[1])) + 100
    data[at] ^= 0xFF
    shard.write_bytes(bytes(data))
    _, problems = check_files(table, tmp_path, [("clip", "clip_sha256")])
    assert [(p.row, p.problem) for p in problems] == [(2, "changed")]
    gone = table.assign(clip=[refs[0].replace("c00", "c09"), "clips/shard-00009.zip#c01.kclip"])
    _, problems = check_files(gone, tmp_path, [("clip", "clip_sha256")])
    assert [(p.row, p.problem) for p in problems] == [(1, "missing"), (2, "missing")]
