"""Edit masks live in shards (docs/shards.md): RefVIE reads sharded clips, writes each batch's masks into
a few deterministic shard files, and every later reader (references, export, previews) takes the
`<shard>#<pair_id>.npz` reference the table stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kiwi_platform.lib import shards
from kiwi_platform.refvie import region_table
from kiwi_platform.refvie.mask_store import load_masks, save_masks
from kiwi_platform.refvie.pipeline import default_backends
from kiwi_platform.refvie.reference_table import synthesize_batch
from kiwi_platform.refvie.region_table import ground_batch
from kiwi_platform.synth import generate
from kiwi_platform.synth.clip_rows import normalized_rows


@pytest.fixture(scope="module")
def sharded_clips(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> tuple[pd.DataFrame, Path]:
    """A `normalized_clips`-shaped table of 4 synthetic pairs whose clips are members of one shard."""
    root = tmp_path_factory.mktemp("sharded")
    generate(root / "synth", 4, seed=11, frames=9, height=96, width=160, image_share=0.0, demo_dir=demo_dir)
    rows = [row for _, row in normalized_rows(root / "synth", root, height=96, width=160)]
    loose = {Path(r[k]).name: root / r[k] for r in rows for k in ("src_clip", "tgt_clip")}
    placed = shards.write_shards(root / "clips", loose, per_shard=64)
    for path in loose.values():
        path.unlink()  # only the shard holds the clips now
    for r in rows:
        for k in ("src_clip", "tgt_clip"):
            name = Path(r[k]).name
            r[k] = shards.member_ref(placed[name].relative_to(root), name)
    return pd.DataFrame(rows), root


def _ground(clips: pd.DataFrame, root: Path, folder: Path) -> pd.DataFrame:
    backends = default_backends()
    table, _ = ground_batch(clips, root, folder, grounder=backends["grounder"], segmenter=backends["segmenter"])
    return table


def test_masks_are_packed_into_shards_the_table_points_into(sharded_clips) -> None:
    """Grounding pairs whose clips are shard members works; the masks folder then holds one shard (no
    per-pair files, no staging folder); each `mask_file` is `<shard>#<pair_id>.npz`, loads as a
    (T, H, W) bool mask and its member's sha256 is `mask_sha256`."""
    clips, root = sharded_clips
    table = _ground(clips, root, root / "regions")
    assert len(table) == len(clips)
    masks = root / "regions" / "masks"
    assert [p.name for p in masks.iterdir()] == ["shard-00000.zip"]
    for rec in table.to_dict("records"):
        ref = root / rec["mask_file"]
        assert rec["mask_file"] == f"regions/masks/shard-00000.zip#{rec['pair_id']}.npz"
        loaded = load_masks(ref)
        assert loaded.dtype == bool and loaded.shape == (rec["frames"], rec["height"], rec["width"])
        assert shards.sha256(ref) == rec["mask_sha256"]


def test_mask_shards_are_byte_identical_across_runs_and_split_at_the_limit(
    sharded_clips, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pairs grounded twice (into different folders, or again in place) give byte-identical mask
    shards and tables; with a limit of 3 masks per shard, 4 pairs make 2 shards in pair-id order."""
    clips, root = sharded_clips
    folder = root / "regions-a"
    first = _ground(clips, root, folder)
    before = {p.name: p.read_bytes() for p in (folder / "masks").iterdir()}
    again = _ground(clips, root, folder)
    pd.testing.assert_frame_equal(first, again)
    assert {p.name: p.read_bytes() for p in (folder / "masks").iterdir()} == before
    monkeypatch.setattr(region_table, "MASKS_PER_SHARD", 3)
    split = _ground(clips, root, folder)
    assert sorted(p.name for p in (folder / "masks").iterdir()) == ["shard-00000.zip", "shard-00001.zip"]
    members = [shards.members(folder / "masks" / n) for n in ("shard-00000.zip", "shard-00001.zip")]
    assert members[0] + members[1] == sorted(f"{p}.npz" for p in clips["pair_id"])
    assert [len(m) for m in members] == [3, 1]
    assert split["mask_sha256"].tolist() == first["mask_sha256"].tolist()


def test_references_read_sharded_masks_and_old_loose_masks_are_cleaned(sharded_clips) -> None:
    """reference_images synthesizes from masks and clips read out of shards; a per-pair `.npz` left by
    the layout before shards is removed on the next grounding, a file the platform did not write is kept."""
    clips, root = sharded_clips
    folder = root / "regions-b"
    old = save_masks(folder / "masks" / "old-pair.npz", np.zeros((1, 4, 8), bool))
    (folder / "masks" / "README.txt").write_text("mine")
    table = _ground(clips, root, folder)
    assert not old.exists() and (folder / "masks" / "README.txt").exists()
    refs, _, origins = synthesize_batch(table, root, root / "refs-b", inpainter=default_backends()["inpainter"])
    assert origins.get("synthesized", 0) > 0
    for rec in refs[refs["reference_origin"] == "synthesized"].to_dict("records"):
        assert shards.sha256(root / rec["reference_file"]) == rec["reference_sha256"]
