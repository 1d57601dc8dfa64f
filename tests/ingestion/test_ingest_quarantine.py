"""Every quarantine reason, each proven through the public path: read_manifest -> validate_manifest.

Each case writes a small manifest beside the shared media kit (see conftest.py) and checks the
reason code, the manifest row, the offending file named in `path`, and that the message is a
sentence a person can act on. Nothing may crash and nothing may be dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.validate import validate_manifest
from kiwi_platform.lib.quarantine import REASONS
from tests.ingestion.ingest_media import MIN_FRAMES, Kit

GOOD = ("make the sky purple", "a.mp4", "a_tgt.mp4", "")


def assert_sentence(message: str) -> None:
    """A human message: one line, several words, no traceback or bare exception repr."""
    assert message and message == message.strip(), message
    assert "\n" not in message and "Traceback" not in message, message
    assert len(message.split()) >= 3, message


def run(path: Path):
    return validate_manifest(read_manifest(path), min_frames=MIN_FRAMES)


# (case id, rows, expected reason, file name that must be in `path` or "" when no single file is at fault)
SINGLE_ROW_CASES = [
    ("missing_file", [("p", "a.mp4", "video/target/nowhere.mp4", "")], "missing_file", "nowhere.mp4"),
    ("missing_ref", [("p", "a.mp4", "a_tgt.mp4", "gone.jpg")], "missing_file", "gone.jpg"),
    ("empty_file", [("p", "empty.mp4", "a_tgt.mp4", "")], "empty_file", "empty.mp4"),
    ("not_media", [("p", "a.mp4", "text.mp4", "")], "not_media", "text.mp4"),
    ("truncated_plain_mp4", [("p", "trunc_plain.mp4", "a_tgt.mp4", "")], "truncated_video", "trunc_plain.mp4"),
    (
        "truncated_faststart_mp4",
        [("p", "trunc_faststart.mp4", "a_tgt.mp4", "")],
        "truncated_video",
        "trunc_faststart.mp4",
    ),
    ("too_few_frames", [("p", "short.mp4", "short_tgt.mp4", "")], "too_few_frames", "short.mp4"),
    ("too_few_frames_target", [("p", "a.mp4", "short_tgt.mp4", "")], "too_few_frames", "short_tgt.mp4"),
    ("empty_prompt", [("", "a.mp4", "a_tgt.mp4", "")], "empty_prompt", ""),
    ("whitespace_prompt", [(" \t  ", "a.mp4", "a_tgt.mp4", "")], "empty_prompt", ""),
    ("empty_tgt_cell", [("p", "a.mp4", "", "")], "missing_column", ""),
    ("empty_src_cell", [("p", "  ", "a_tgt.mp4", "")], "missing_column", ""),
    ("dotdot_escape", [("p", "../x.mp4", "a_tgt.mp4", "")], "path_escape", "x.mp4"),
    ("nested_dotdot_escape", [("p", "a.mp4", "sub/../../a_tgt.mp4", "")], "path_escape", "a_tgt.mp4"),
    ("symlink_escape", [("p", "link_out.mp4", "a_tgt.mp4", "")], "path_escape", "link_out.mp4"),
    ("ref_escape", [("p", "a.mp4", "a_tgt.mp4", "../ref.jpg")], "path_escape", "ref.jpg"),
    ("corrupt_ref_jpg", [("p", "a.mp4", "a_tgt.mp4", "corrupt.jpg")], "unreadable_image", "corrupt.jpg"),
    ("half_ref_jpg", [("p", "a.mp4", "a_tgt.mp4", "cut.jpg")], "unreadable_image", "cut.jpg"),
    ("video_as_ref", [("p", "a.mp4", "a_tgt.mp4", "b.mp4")], "unreadable_image", "b.mp4"),
    ("corrupt_source_image", [("p", "corrupt.jpg", "img_tgt.jpg", "")], "unreadable_image", "corrupt.jpg"),
    ("size_mismatch", [("p", "a.mp4", "wide.mp4", "")], "size_mismatch", "wide.mp4"),
    ("image_size_mismatch", [("p", "img_src.jpg", "ref.jpg", "")], "size_mismatch", "ref.jpg"),
    ("frame_count_mismatch", [("p", "a.mp4", "long.mp4", "")], "frame_count_mismatch", "long.mp4"),
    ("kind_mismatch", [("p", "img_src.jpg", "a_tgt.mp4", "")], "kind_mismatch", "a_tgt.mp4"),
]


@pytest.mark.parametrize("rows,reason,culprit", [c[1:] for c in SINGLE_ROW_CASES], ids=[c[0] for c in SINGLE_ROW_CASES])
def test_bad_row_is_quarantined_with_its_reason(
    write_manifest: Callable[..., Path], rows: list, reason: str, culprit: str
) -> None:
    """One bad row is quarantined with its own reason code, its row number, a sentence and the offending file."""
    result = run(write_manifest(rows))
    assert result.accepted == []
    assert len(result.quarantined) == 1
    record = result.quarantined[0]
    assert (record.row, record.reason) == (1, reason), record.message
    assert_sentence(record.message)
    if culprit:
        assert Path(record.path).name == culprit, record.path


def test_absolute_path_is_taken_as_written(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """An absolute path names the file its author meant, even outside the manifest folder: the row is
    accepted and the table records the path as written (it is outside the base, so not relative)."""
    result = run(write_manifest([("p", str(kit.outside), "a_tgt.mp4", "")]))
    assert result.quarantined == [] and len(result.accepted) == 1
    assert (result.accepted[0]["src_rel"], result.accepted[0]["tgt_rel"]) == (str(kit.outside), "a_tgt.mp4")


def test_absolute_path_inside_the_base_is_stored_relative(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """An absolute path that lies under the base folder is recorded relative to it, like a relative path."""
    result = run(write_manifest([("p", str(kit.root / "a.mp4"), "./a_tgt.mp4", "")]))
    assert [(r["src_rel"], r["tgt_rel"]) for r in result.accepted] == [("a.mp4", "a_tgt.mp4")]


def test_tilde_path_is_path_escape_with_a_hint(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """`~` is not expanded (upstream does not either): the row is path_escape and the message says what to write."""
    result = run(write_manifest([("p", "~/a.mp4", "a_tgt.mp4", "")]))
    assert [(q.reason, q.path) for q in result.quarantined] == [("path_escape", "~/a.mp4")]
    assert "absolute path" in result.quarantined[0].message
    assert_sentence(result.quarantined[0].message)


def test_symlink_inside_the_folder_is_allowed(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """A symlink that stays inside the manifest folder is fine: only links leading out are refused."""
    link = kit.root / "inner_link.mp4"
    if not link.exists():
        link.symlink_to(kit.root / "a.mp4")
    result = run(write_manifest([("p", "inner_link.mp4", "a_tgt.mp4", "")]))
    assert result.quarantined == [] and len(result.accepted) == 1


def test_same_paths_twice_is_duplicate_row(write_manifest: Callable[..., Path]) -> None:
    """The second of two identical rows is quarantined as duplicate_row pointing back at row 1."""
    result = run(write_manifest([GOOD, GOOD]))
    assert [a["row"] for a in result.accepted] == [1]
    assert [(q.row, q.reason) for q in result.quarantined] == [(2, "duplicate_row")]
    assert "1" in result.quarantined[0].message
    assert_sentence(result.quarantined[0].message)


def test_same_content_under_other_names_is_duplicate_row(write_manifest: Callable[..., Path]) -> None:
    """Byte-identical files under different names with the same prompt are a duplicate (content hash)."""
    result = run(write_manifest([GOOD, (GOOD[0], "a_copy.mp4", "a_tgt_copy.mp4", "")]))
    assert [(q.row, q.reason) for q in result.quarantined] == [(2, "duplicate_row")]
    assert_sentence(result.quarantined[0].message)


def test_same_files_other_prompt_is_not_a_duplicate(write_manifest: Callable[..., Path]) -> None:
    """Two different instructions on the same pair of files are two samples, both accepted."""
    result = run(write_manifest([GOOD, ("make the sky green", "a.mp4", "a_tgt.mp4", "")]))
    assert result.quarantined == [] and len(result.accepted) == 2
    assert len({a["pair_id"] for a in result.accepted}) == 2


def test_manifest_without_tgt_column_quarantines_every_row(write_manifest: Callable[..., Path]) -> None:
    """A manifest lacking the tgt_video column quarantines each row as missing_column, naming the column."""
    path = write_manifest([("p1", "a.mp4"), ("p2", "b.mp4")], header=("prompt", "src_video"))
    result = run(path)
    assert result.accepted == []
    assert [(q.row, q.reason) for q in result.quarantined] == [(1, "missing_column"), (2, "missing_column")]
    assert all("tgt_video" in q.message for q in result.quarantined)
    assert_sentence(result.quarantined[0].message)


def test_good_rows_are_accepted_with_probed_facts(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """Good video, video+reference and image rows are accepted with hashes and probed sizes recorded."""
    rows = [GOOD, ("add stones", "b.mp4", "b_tgt.mp4", "ref.jpg"), ("golden hour", "img_src.jpg", "img_tgt.jpg", "")]
    result = run(write_manifest(rows))
    assert result.quarantined == []
    video, ref, image = result.accepted
    assert (video["media"], video["src_width"], video["src_height"], video["src_frames"]) == ("video", 96, 64, 24)
    assert (ref["ref_width"], ref["ref_height"], ref["ref_rel"]) == (64, 64, "ref.jpg")
    assert (image["media"], image["tgt_frames"]) == ("image", 1)
    import hashlib

    assert video["src_sha256"] == hashlib.sha256((kit.root / "a.mp4").read_bytes()).hexdigest()


MIXED = [
    GOOD,  # 1 accepted
    ("add stones", "b.mp4", "b_tgt.mp4", "ref.jpg"),  # 2 accepted
    ("golden hour", "img_src.jpg", "img_tgt.jpg", ""),  # 3 accepted
    ("r4", "a.mp4", "video/target/nowhere.mp4", ""),  # missing_file
    ("r5", "empty.mp4", "a_tgt.mp4", ""),  # empty_file
    ("r6", "text.mp4", "a_tgt.mp4", ""),  # not_media
    ("r7", "a.mp4", "trunc_plain.mp4", ""),  # truncated_video
    ("r8", "short.mp4", "short_tgt.mp4", ""),  # too_few_frames
    ("   ", "a.mp4", "a_tgt.mp4", ""),  # empty_prompt
    ("r10", "a.mp4", "", ""),  # missing_column
    GOOD,  # duplicate_row (paths)
    (GOOD[0], "a_copy.mp4", "a_tgt_copy.mp4", ""),  # duplicate_row (content)
    ("r13", "../x.mp4", "a_tgt.mp4", ""),  # path_escape
    ("r14", "link_out.mp4", "a_tgt.mp4", ""),  # path_escape (symlink)
    ("r15", "a.mp4", "a_tgt.mp4", "corrupt.jpg"),  # unreadable_image
    ("r16", "a.mp4", "wide.mp4", ""),  # size_mismatch
    ("r17", "a.mp4", "long.mp4", ""),  # frame_count_mismatch
    ("r18", "img_src.jpg", "a_tgt.mp4", ""),  # kind_mismatch
    ("r19\x00", "a.mp4", "a_tgt.mp4", ""),  # bad_prompt
    ("r" * 200_000, "a.mp4", "a_tgt.mp4", ""),  # prompt_too_long
]
# unreadable_file needs a user the kernel can refuse a read: proven in test_ingest_input_reasons.py (root
# bypasses chmod). changed_file arises after ingestion, when an original kept by reference changes before
# normalization reads it: proven in test_raw_by_reference.py.
OWN_TEST = {"unreadable_file", "changed_file"}


def test_mixed_manifest_accounts_for_every_row(write_manifest: Callable[..., Path]) -> None:
    """With every bad case in one manifest: accepted + quarantined == rows in, each row exactly once."""
    result = run(write_manifest(MIXED))
    assert len(result.accepted) + len(result.quarantined) == len(MIXED) == result.total
    rows_seen = sorted([a["row"] for a in result.accepted] + [q.row for q in result.quarantined])
    assert rows_seen == list(range(1, len(MIXED) + 1))
    assert sorted(a["row"] for a in result.accepted) == [1, 2, 3]
    by_row = {q.row: q.reason for q in result.quarantined}
    assert [by_row[r] for r in range(4, 21)] == [
        "missing_file",
        "empty_file",
        "not_media",
        "truncated_video",
        "too_few_frames",
        "empty_prompt",
        "missing_column",
        "duplicate_row",
        "duplicate_row",
        "path_escape",
        "path_escape",
        "unreadable_image",
        "size_mismatch",
        "frame_count_mismatch",
        "kind_mismatch",
        "bad_prompt",
        "prompt_too_long",
    ]
    assert set(Counter(by_row.values())) == set(REASONS) - OWN_TEST  # every other reason code shows up
    for q in result.quarantined:
        assert_sentence(q.message)


def test_upstream_demo_manifests_quarantine_missing_targets(demo_dir: Path) -> None:
    """The shipped demo manifests: row 1 has a missing target (missing_file), rows 2..8 repeat it; none accepted."""
    for csv_path in sorted(demo_dir.glob("*_training_set.csv")):
        manifest = read_manifest(csv_path)
        result = validate_manifest(manifest, min_frames=81)
        assert result.accepted == [], csv_path.name
        assert result.total == len(manifest.rows) == 8
        reasons = [(q.row, q.reason) for q in result.quarantined]
        assert reasons == [(1, "missing_file")] + [(r, "duplicate_row") for r in range(2, 9)], csv_path.name
        missing = result.quarantined[0]
        assert "/target/" in missing.path and not Path(missing.path).exists()
        assert Path(missing.path).name == Path(manifest.rows[0].tgt).name
        assert_sentence(missing.message)
