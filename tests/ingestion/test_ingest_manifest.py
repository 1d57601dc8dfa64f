"""Reading manifests: the upstream format (unquoted commas included) parses; unusable files are one-line user errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.manifest import read_manifest


def test_upstream_video_manifest_keeps_prompts_with_commas_whole(demo_dir: Path) -> None:
    """Upstream leaves commas in prompts unquoted; the prompt comes back whole and the paths stay paths."""
    path = demo_dir / "video_demo_training_set.csv"
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    manifest = read_manifest(path)
    assert len(manifest.rows) == len(lines) == 8
    for line, row in zip(lines, manifest.rows, strict=True):
        prompt, src, tgt = line.rsplit(",", 2)  # independent split: the last two fields are paths
        assert "," in row.prompt
        assert (row.prompt, row.src, row.tgt, row.ref) == (prompt, src, tgt, None)
    assert manifest.repaired_rows == 8


@pytest.mark.parametrize("name", ["image_demo_training_set.csv", "video_ref_demo_training_set.csv"])
def test_upstream_manifests_map_columns_by_header(demo_dir: Path, name: str) -> None:
    """Columns are matched by header name (the image manifest lists tgt_video first), refs included."""
    path = demo_dir / name
    header, first = path.read_text(encoding="utf-8").splitlines()[:2]
    expected = dict(zip(header.split(","), first.split(","), strict=True))
    row = read_manifest(path).rows[0]
    assert row.prompt == expected["prompt"]
    assert (row.src, row.tgt, row.ref) == (expected["src_video"], expected["tgt_video"], expected.get("ref_image"))
    assert read_manifest(path).base_dir == demo_dir.resolve()


def test_unquoted_commas_are_rejoined_in_the_middle_column(tmp_path: Path) -> None:
    """When prompt is not the last column, surplus fields still go back into the prompt."""
    path = tmp_path / "m.csv"
    path.write_text(
        "src_video,prompt,tgt_video,ref_image\na.mp4,red, then blue, then red,b.mp4,r.jpg\n", encoding="utf-8"
    )
    row = read_manifest(path).rows[0]
    assert (row.src, row.prompt, row.tgt, row.ref) == ("a.mp4", "red, then blue, then red", "b.mp4", "r.jpg")


def test_row_numbers_are_data_rows_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    """Row numbers count data lines after the header (what users see); blank lines are not rows. BOM is fine."""
    path = tmp_path / "m.csv"
    path.write_bytes("\ufeffprompt,src_video,tgt_video\nx,a.mp4,b.mp4\n\n  , ,\ny,c.mp4,d.mp4\n".encode("utf-8"))
    manifest = read_manifest(path)
    assert [(r.row, r.prompt, r.src) for r in manifest.rows] == [(1, "x", "a.mp4"), (4, "y", "c.mp4")]
    assert manifest.columns == ("prompt", "src_video", "tgt_video") and manifest.missing_columns == ()


def test_manifest_hash_tracks_its_bytes(tmp_path: Path) -> None:
    """The manifest's sha256 changes when its bytes do (so a re-ingest of an edited manifest is a new version)."""
    path = tmp_path / "m.csv"
    path.write_text("prompt,src_video,tgt_video\nx,a.mp4,b.mp4\n", encoding="utf-8")
    first = read_manifest(path).sha256
    path.write_text("prompt,src_video,tgt_video\nx,a.mp4,c.mp4\n", encoding="utf-8")
    assert len(first) == 64 and read_manifest(path).sha256 != first


UNREADABLE = {
    "not_utf8": b"prompt,src_video,tgt_video\n\xff\xfe caf\xe9,a.mp4,b.mp4\n",
    "no_header": b"a,b,c\n1,2,3\n",
    "empty_file": b"",
    "binary": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("content", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_unreadable_manifest_is_a_one_line_user_error(tmp_path: Path, content: bytes) -> None:
    """A manifest that cannot be read at all raises KiwiUserError with one line naming the file."""
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(KiwiUserError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "\n" not in message and "bad.csv" in message and len(message.split()) >= 4
    assert err.value.exit_code != 0


def test_missing_manifest_is_a_one_line_user_error(tmp_path: Path) -> None:
    """Pointing at a manifest that does not exist is a one-line user error, not a traceback."""
    with pytest.raises(KiwiUserError) as err:
        read_manifest(tmp_path / "nope.csv")
    assert "\n" not in str(err.value) and "nope.csv" in str(err.value) and "not exist" in str(err.value)
    assert err.value.code == "manifest_missing"
