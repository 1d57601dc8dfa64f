"""`kiwi export --batch NAME --out DIR` on a batch the real graph produced: one folder per manifest
row with binary masks at the normalized size, the reference, and meta.json (quarantine reasons too),
plus kiwi-export.json; and the folder rules on the real export (the user's files are never deleted).
Finer cases of the folder rules are in tests/refvie/test_export_target.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib import shards
from kiwi_platform.media.clips import read_clip
from kiwi_platform.refvie.export import export_batch
from kiwi_platform.refvie.export_manifest import MANIFEST, read_manifest
from tests.integration.test_cli import kiwi
from tests.integration.test_refvie_assets import BATCH, NO_EDIT_ROW, entered, shared_graph
from tests.refvie.test_export_target import siblings, snapshot


@pytest.fixture(scope="module")
def exported(tmp_path_factory, small_synth):
    """The shared graph's batch exported once through the CLI."""
    g = shared_graph(tmp_path_factory, small_synth)
    out = tmp_path_factory.mktemp("export") / "out"
    with entered(g):
        proc = kiwi("export", "--batch", BATCH, "--out", str(out), home=g.home)
        yield g, out, proc


@pytest.mark.slow
def test_export_writes_one_folder_per_manifest_row(exported):
    """Every manifest row gets `DIR/<row>/meta.json`, quarantined rows included, plus kiwi-export.json
    listing every file written, and nothing else (no half-written temp folders beside or inside DIR);
    the command says how many rows it wrote."""
    g, out, proc = exported
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest_rows = len((g.media / "manifest.csv").read_text().strip().splitlines()) - 1
    assert sorted(p.name for p in out.iterdir()) == sorted([*(str(r) for r in range(1, manifest_rows + 1)), MANIFEST])
    assert all((out / str(r) / "meta.json").is_file() for r in range(1, manifest_rows + 1))
    assert f"exported {manifest_rows} rows" in proc.stdout
    listed = read_manifest(out)
    assert listed["batch"] == BATCH and listed["rows"] == manifest_rows
    assert set(listed["files"]) | {MANIFEST} == {k for k, v in snapshot(out).items() if v != "dir"}
    assert siblings(out) == {"out"}


@pytest.mark.slow
def test_exported_masks_match_the_normalized_clips(exported):
    """masks/<frame:04d>.png are binary 0/255 PNGs at the normalized target size, one per frame of the
    normalized clip, identical to the stored masks, and inside the recorded edit box."""
    from kiwi_platform.refvie.mask_store import load_masks

    g, out, _ = exported
    store = g.resources["store"]
    regions = store.read_table(BATCH, "edit_regions")
    assert len(regions) >= 6
    for rec in regions.to_dict("records"):
        folder = out / str(rec["row"])
        target = read_clip(store.root_path / rec["tgt_clip"])
        files = sorted((folder / "masks").iterdir())
        assert [p.name for p in files] == [f"{i:04d}.png" for i in range(len(target))], rec["row"]
        stack = np.stack([np.asarray(Image.open(p)) for p in files])
        assert stack.shape == target.shape[:3] == (len(target), rec["height"], rec["width"])
        assert set(np.unique(stack)) <= {0, 255} and stack.any(), rec["row"]
        np.testing.assert_array_equal(stack == 255, load_masks(store.root_path / rec["mask_file"]))
        x0, y0, x1, y1 = json.loads(rec["box"])
        outside = stack.copy()
        outside[:, y0:y1, x0:x1] = 0
        assert not outside.any(), f"row {rec['row']}: mask pixels outside the box {rec['box']}"


@pytest.mark.slow
def test_exported_meta_and_reference_agree_with_the_tables(exported):
    """meta.json carries edit type, box, scores and hashes equal to the quadruplet table; reference.png
    is written exactly for rows with a reference and has the stored reference's pixels."""
    g, out, _ = exported
    store = g.resources["store"]
    quads = store.read_table(BATCH, "quadruplets")
    refs = {r["row"]: r for r in store.read_table(BATCH, "reference_images").to_dict("records")}
    with_ref = 0
    for rec in quads.to_dict("records"):
        folder = out / str(rec["row"])
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["status"] == "quadruplet" and meta["pair_id"] == rec["pair_id"]
        assert meta["edit_type"] == rec["edit_type"] and meta["task"] == rec["task"]
        assert meta["box"] == json.loads(refs[rec["row"]]["box"])
        assert meta["size"] == [rec["height"], rec["width"]]
        for key in ("type_confidence", "dup_similarity", "mask_area"):
            assert meta["scores"][key] == pytest.approx(rec[key]), key
        judge = rec["judge_score"]
        if judge != judge:  # NaN: no reference was judged
            assert meta["scores"]["judge_score"] is None
        else:
            assert meta["scores"]["judge_score"] == pytest.approx(judge)
        for key in ("src_sha256", "tgt_sha256", "src_clip_sha256", "tgt_clip_sha256", "mask_sha256"):
            assert meta["hashes"][key] == rec[key], key
        assert shards.sha256(store.root_path / rec["src_clip"]) == meta["hashes"]["src_clip_sha256"]
        reference = refs[rec["row"]]["reference_file"] or rec["ref_image"]
        assert (folder / "reference.png").exists() == bool(reference), rec["row"]
        if reference:
            with_ref += 1
            exported_px = np.asarray(Image.open(folder / "reference.png").convert("RGB"))
            with shards.open_member(store.root_path / reference) as fh, Image.open(fh) as img:
                stored_px = np.asarray(img.convert("RGB"))
            np.testing.assert_array_equal(exported_px, stored_px)
            assert meta["reference"]["file"] == reference
            assert meta["reference"]["sha256"] == shards.sha256(store.root_path / reference)
    assert with_ref >= 1


@pytest.mark.slow
def test_quarantined_row_meta_says_why(exported):
    """The no-edit row has no masks or reference, and its meta.json says it was quarantined with
    reason qc_no_edit, the stage and a message."""
    g, out, _ = exported
    folder = out / str(NO_EDIT_ROW)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "quarantined" and meta["row"] == NO_EDIT_ROW and meta["batch"] == BATCH
    assert [q["reason"] for q in meta["quarantine"]] == ["qc_no_edit"]
    assert meta["quarantine"][0]["stage"] == "edit_regions" and meta["quarantine"][0]["message"]
    assert not (folder / "masks").exists() and not (folder / "reference.png").exists()
    # rows that kept going carry the reasons of what was dropped along the way (e.g. a rejected reference)
    store_q = {(q["row"], q["reason"]) for q in _quarantine_records(g)}
    for row_dir in (p for p in out.iterdir() if p.is_dir()):
        meta = json.loads((row_dir / "meta.json").read_text())
        assert {(meta["row"], q["reason"]) for q in meta["quarantine"]} == {
            (r, why) for r, why in store_q if r == meta["row"]
        }


def _quarantine_records(g) -> list[dict]:
    from kiwi_platform.lib import quarantine

    return quarantine.read_batch(g.resources["store"].batch_dir(BATCH)).to_dict("records")


def test_export_of_unknown_batch_is_a_one_line_error(kiwi_home: Path, tmp_path: Path):
    """Exporting a batch that was never ingested exits 2 with `error: ...`, no traceback, no output folder content."""
    (kiwi_home / "data").mkdir(parents=True)  # some state exists, just not this batch
    proc = kiwi("export", "--batch", "never-ingested", "--out", str(tmp_path / "out"), home=kiwi_home)
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    assert proc.stderr.strip().startswith("error:") and "never-ingested" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_re_export_into_a_previous_export_is_byte_identical(exported, tmp_path: Path):
    """Exporting the same batch again into a previous export of ours needs no --overwrite, says it replaced
    it, and gives byte-identical files (also identical to what the CLI wrote); nothing is left beside it."""
    g, cli_out, _ = exported
    out = tmp_path / "out"
    with entered(g):
        store = g.resources["store"]
        first = export_batch(store, BATCH, out)
        assert first.outcome.replaced is None
        before = snapshot(out)
        again = export_batch(store, BATCH, out)
    assert again.outcome.replaced["batch"] == BATCH and again.outcome.moved_aside is None
    assert snapshot(out) == before == snapshot(cli_out)
    assert siblings(out) == {"out"}


@pytest.mark.slow
def test_user_folders_named_like_rows_survive_export(exported, tmp_path: Path):
    """An --out holding the user's own `1/` folder, a file named `2` and a symlink named `3` is refused in
    one line and left byte-identical; with --overwrite it is moved aside whole (nothing deleted) and the
    export takes its place."""
    g, cli_out, _ = exported
    out = tmp_path / "out"
    (out / "1").mkdir(parents=True)
    (out / "1" / "my-masks.npz").write_bytes(b"user data")
    (out / "2").write_text("a file named like a row")
    (out / "3").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text("keep")
    before = snapshot(out)
    with entered(g):
        store = g.resources["store"]
        with pytest.raises(KiwiUserError, match="not a previous kiwi export") as err:
            export_batch(store, BATCH, out)
        assert "\n" not in str(err.value)
        assert snapshot(out) == before
        summary = export_batch(store, BATCH, out, overwrite=True)
    assert snapshot(summary.outcome.moved_aside) == before
    assert snapshot(out) == snapshot(cli_out) and (tmp_path / "elsewhere").read_text() == "keep"


@pytest.mark.slow
def test_failed_export_leaves_the_previous_export_untouched(exported, tmp_path: Path):
    """When a stored file the export reads is missing (the shard holding the second region's masks), the export stops with one
    line saying nothing was changed; the previous export at --out is byte-identical and no half-written
    folder is left in its place or beside it."""
    g, _, _ = exported
    out = tmp_path / "out"
    store = g.resources["store"]
    regions = store.read_table(BATCH, "edit_regions").sort_values("row")
    mask_file = shards.holder(store.root_path / regions.iloc[1]["mask_file"])
    moved = tmp_path / "moved-mask"
    with entered(g):
        export_batch(store, BATCH, out)
        before = snapshot(out)
        shutil.move(mask_file, moved)
        try:
            with pytest.raises(KiwiUserError, match="changed nothing there") as err:
                export_batch(store, BATCH, out)
        finally:
            shutil.move(moved, mask_file)
    assert "\n" not in str(err.value) and mask_file.name in str(err.value)
    assert snapshot(out) == before
    assert siblings(out) == {"out"}


def test_export_target_errors_are_one_line_from_the_cli(kiwi_home: Path, tmp_path: Path):
    """`kiwi export --out file/sub` and `--out` at a folder of the user's exit 2 with one `error:` line and
    no traceback, before the batch is even looked at; the user's folder and file are untouched."""
    (kiwi_home / "data").mkdir(parents=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    under = kiwi("export", "--batch", "never-ingested", "--out", str(blocker / "sub"), home=kiwi_home)
    mine = tmp_path / "mine"
    (mine / "1").mkdir(parents=True)
    (mine / "1" / "keep.txt").write_text("keep")
    refused = kiwi("export", "--batch", "never-ingested", "--out", str(mine), home=kiwi_home)
    for proc, says in ((under, f"{blocker} is a file"), (refused, "not a previous kiwi export")):
        assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
        assert proc.stderr.startswith("error:") and says in proc.stderr and proc.stderr.count("\n") == 1
        assert "Traceback" not in proc.stderr + proc.stdout
    assert blocker.read_text() == "x" and (mine / "1" / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "kiwi-home", "mine"]
