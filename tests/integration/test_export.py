"""`kiwi export --batch NAME --out DIR` on a batch the real graph produced: one folder per manifest
row with binary masks at the normalized size, the reference, and meta.json (quarantine reasons too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiwi_platform.media.clips import read_clip
from tests.integration.test_cli import kiwi
from tests.integration.test_refvie_assets import BATCH, NO_EDIT_ROW, entered, sha256, shared_graph


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
    """Every manifest row gets `DIR/<row>/meta.json`, quarantined rows included, and nothing else
    (no half-written temp folders); the command says how many rows it wrote."""
    g, out, proc = exported
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest_rows = len((g.media / "manifest.csv").read_text().strip().splitlines()) - 1
    assert sorted(p.name for p in out.iterdir()) == sorted(str(r) for r in range(1, manifest_rows + 1))
    assert all((out / str(r) / "meta.json").is_file() for r in range(1, manifest_rows + 1))
    assert f"exported {manifest_rows} rows" in proc.stdout


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
        assert sha256(store.root_path / rec["src_clip"]) == meta["hashes"]["src_clip_sha256"]
        reference = refs[rec["row"]]["reference_file"] or rec["ref_image"]
        assert (folder / "reference.png").exists() == bool(reference), rec["row"]
        if reference:
            with_ref += 1
            exported_px = np.asarray(Image.open(folder / "reference.png").convert("RGB"))
            stored_px = np.asarray(Image.open(store.root_path / reference).convert("RGB"))
            np.testing.assert_array_equal(exported_px, stored_px)
            assert meta["reference"]["file"] == reference
            assert meta["reference"]["sha256"] == sha256(store.root_path / reference)
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
    for row_dir in out.iterdir():
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
