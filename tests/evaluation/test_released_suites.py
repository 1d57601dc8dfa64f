"""Released benchmark files are read as upstream reads them, and every bad row is reported before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.evaluation.released_suites import read_released_suite
from kiwi_platform.evaluation.suites import SuiteError
from tests.evaluation.released_fixtures import imgedit_singleturn, openve_bench, refvie_bench


def test_openve_bench_skips_upstreams_categories_and_counts_them(demo_dir: Path, tmp_path: Path) -> None:
    """creative_edit / subtitle_edit rows are skipped and counted; the rest keep their edited_type, upstream row
    index, quoted-comma prompt and the output name upstream's script writes."""
    path, root = openve_bench(demo_dir, tmp_path)
    released = read_released_suite("openve-bench", path, root, "ov")
    assert released.rows == 4 and released.skipped == {"creative_edit": 1, "subtitle_edit": 1}
    cases = {c.case_id: c for c in released.suite.cases}
    assert set(cases) == {"ov_0000_forest", "ov_0002_bathtub"}
    change = cases["ov_0002_bathtub"]
    assert (change.suite, change.category) == ("openve", "local_change")
    assert change.prompt == "Replace the towel with grey stones, stacked."
    assert change.metadata["upstream_output"] == "bathtub_edited.mp4" and change.metadata["row"] == 2
    assert released.suite.path(change.src_video).is_file()


def test_refvie_bench_keeps_the_subject_background_split_and_references(demo_dir: Path, tmp_path: Path) -> None:
    """Each item becomes a RefVIE case in its subtask, with its reference image resolved under the root."""
    path, root = refvie_bench(demo_dir, tmp_path)
    suite = read_released_suite("refvie-bench", path, root, "rv").suite
    assert [(c.category, c.has_reference) for c in suite.cases] == [("subject", True), ("background", True)]
    assert suite.cases[0].metadata["upstream_output"] == "0_Replace th_bathtub.mp4"
    assert all(suite.path(c.ref_image).is_file() for c in suite.cases)


def test_imgedit_singleturn_cases_are_images_grouped_by_edit_type(demo_dir: Path, tmp_path: Path) -> None:
    """singleturn.json keys become one-frame ImgEdit cases, categorised by their edit_type."""
    path, root = imgedit_singleturn(demo_dir, tmp_path)
    suite = read_released_suite("imgedit", path, root, "ie").suite
    assert sorted((c.suite, c.category) for c in suite.cases) == [("imgedit", "background"), ("imgedit", "style")]
    assert all(c.metadata["media"] == "image" for c in suite.cases)


def test_every_bad_row_is_listed_with_its_row_in_one_error(demo_dir: Path, tmp_path: Path) -> None:
    """A missing video and an unknown edited_type (OpenVE), an item without ref_img and an unknown subtask
    (RefVIE), a missing image (ImgEdit): one error per file naming every bad row, nothing returned."""
    bad_openve = [
        {"original_video": "OpenVE-Bench/videos/gone.mp4", "prompt": "Add a cat.", "edited_type": "local_add"},
        {"original_video": "OpenVE-Bench/videos/forest.mp4", "prompt": "Zoom in.", "edited_type": "zoom_edit"},
    ]
    path, root = openve_bench(demo_dir, tmp_path / "o", extra_rows=bad_openve)
    with pytest.raises(SuiteError) as err:
        read_released_suite("openve-bench", path, root, "ov")
    message = str(err.value)
    assert "2 bad row(s) of 6" in message and "\n" not in message
    assert "row 6 (idx 4): original_video 'OpenVE-Bench/videos/gone.mp4' does not exist" in message
    assert "row 7 (idx 5): unknown openve edited_type 'zoom_edit'" in message

    bad_items = [
        {"src_video": "videos/bathtub.mp4", "instruction": "Insert the cup.", "edit_type": "subject"},
        {"src_video": "videos/forest.mp4", "instruction": "x", "ref_img": "refs/stones.jpg", "edit_type": "style"},
    ]
    path, root = refvie_bench(demo_dir, tmp_path / "r", extra_items=bad_items)
    with pytest.raises(SuiteError, match=r"item 2: no ref_img .* \| item 3: unknown refvie edit_type 'style'"):
        read_released_suite("refvie-bench", path, root, "rv")

    path, root = imgedit_singleturn(
        demo_dir, tmp_path / "i", extra={"9": {"id": "x/9.jpg", "prompt": "p", "edit_type": "add"}}
    )
    with pytest.raises(SuiteError, match=r"key '9': id 'x/9.jpg' does not exist"):
        read_released_suite("imgedit", path, root, "ie")


def test_unreadable_files_and_unknown_formats_are_one_line_errors(tmp_path: Path) -> None:
    """A CSV without upstream's columns, YAML that is not a list, or an unknown --format: one line each."""
    (tmp_path / "b.csv").write_text("video,prompt\nx.mp4,hi\n")
    with pytest.raises(SuiteError, match="missing column"):
        read_released_suite("openve-bench", tmp_path / "b.csv", tmp_path, "x")
    (tmp_path / "r.yaml").write_text("src_video: a.mp4\n")
    with pytest.raises(SuiteError, match="expected a list"):
        read_released_suite("refvie-bench", tmp_path / "r.yaml", tmp_path, "x")
    with pytest.raises(SuiteError, match="unknown suite format 'vbench'"):
        read_released_suite("vbench", tmp_path / "b.csv", tmp_path, "x")
