"""Benchmark suites: folders that round-trip, hash by content, and user CSVs that fail with clear messages."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiwi_platform.evaluation import Suite, SuiteError, build_demo_suite, load_suite, load_user_suite, save_suite
from kiwi_platform.evaluation.categories import OPENVE_CATEGORIES
from kiwi_platform.synth.clips import default_demo_dir

DEMO = default_demo_dir()


def test_synthetic_suites_cover_categories_with_ground_truth(small_suite: Suite) -> None:
    """Synthetic cases carry target, masks and (RefVIE) the true reference, in upstream categories."""
    kinds = {c.suite for c in small_suite.cases}
    assert kinds == {"openve", "refvie"}
    for case in small_suite.cases:
        assert case.has_target and case.has_mask
        assert case.has_reference == (case.suite == "refvie")
        assert (small_suite.path(case.mask_dir) / "0000.png").is_file()
        if case.suite == "openve":
            assert case.category in OPENVE_CATEGORIES
        else:
            assert case.category in {"subject", "background"}


def test_round_trip_keeps_cases_and_hash_is_location_independent(small_suite: Suite, tmp_path: Path) -> None:
    """Saving elsewhere and loading back gives the same cases and the same content hash."""
    copy = save_suite(small_suite, tmp_path / "copy", name="renamed")
    loaded = load_suite(tmp_path / "copy", verify=True)
    strip = lambda s: [(c.case_id, c.suite, c.category, c.prompt, c.metadata) for c in s.cases]  # noqa: E731
    assert strip(loaded) == strip(small_suite)
    assert loaded.content_hash == small_suite.content_hash == copy.content_hash
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "copy", moved)
    assert load_suite(moved).content_hash == small_suite.content_hash


def test_hash_changes_when_a_prompt_or_a_pixel_changes(small_suite: Suite, tmp_path: Path) -> None:
    """Editing one prompt or one media file gives a new hash, and verify=True reports the change."""
    folder = tmp_path / "s"
    save_suite(small_suite, folder)
    original = load_suite(folder).content_hash
    case = load_suite(folder).cases[0]
    ref_case = next(c for c in load_suite(folder).cases if c.ref_image)
    image = np.asarray(Image.open(folder / ref_case.ref_image).convert("RGB")).copy()
    image[0, 0] = 255 - image[0, 0]
    Image.fromarray(image).save(folder / ref_case.ref_image)
    with pytest.raises(SuiteError, match="changed since it was saved"):
        load_suite(folder, verify=True)
    pixel_hash = load_suite(folder).content_hash
    text = (folder / "cases.csv").read_text(encoding="utf-8").replace(case.prompt, case.prompt + " Quickly.")
    (folder / "cases.csv").write_text(text, encoding="utf-8")
    prompt_hash = load_suite(folder).content_hash
    assert len({original, pixel_hash, prompt_hash}) == 3


def _write_csv(folder: Path, rows: list[dict[str, str]], header: list[str]) -> Path:
    path = folder / "bench.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_user_csv_in_upstream_format_loads_with_categories(tmp_path: Path) -> None:
    """prompt,src_video[,tgt_video][,ref_image] with relative paths; kind and category follow the row."""
    (tmp_path / "v").mkdir()
    Image.new("RGB", (32, 32), "red").save(tmp_path / "v" / "a.png")
    Image.new("RGB", (32, 32), "blue").save(tmp_path / "v" / "r.png")
    path = _write_csv(
        tmp_path,
        [
            {"prompt": "Remove the red car.", "src_video": "v/a.png", "tgt_video": "", "ref_image": "", "category": ""},
            {
                "prompt": "Put this dog on the sofa.",
                "src_video": "v/a.png",
                "tgt_video": "v/a.png",
                "ref_image": "v/r.png",
                "category": "",
            },
            {
                "prompt": "Make it blue.",
                "src_video": "v/a.png",
                "tgt_video": "",
                "ref_image": "",
                "category": "local_change",
            },
        ],
        ["prompt", "src_video", "tgt_video", "ref_image", "category"],
    )
    suite = load_user_suite(path)
    assert [(c.suite, c.category) for c in suite.cases] == [
        ("openve", "local_remove"),
        ("refvie", "subject"),
        ("openve", "local_change"),
    ]
    assert suite.cases[1].has_target and suite.cases[1].has_reference
    saved = save_suite(suite, tmp_path / "saved")
    assert load_suite(tmp_path / "saved").content_hash == saved.content_hash == suite.content_hash


def test_user_csv_bad_rows_are_all_reported_with_row_numbers(tmp_path: Path) -> None:
    """Missing files, empty prompts and unknown categories are listed together, each with its row."""
    Image.new("RGB", (32, 32)).save(tmp_path / "ok.png")
    path = _write_csv(
        tmp_path,
        [
            {"prompt": "Add a hat.", "src_video": "ok.png", "category": ""},
            {"prompt": "Add a hat.", "src_video": "missing.mp4", "category": ""},
            {"prompt": "", "src_video": "ok.png", "category": ""},
            {"prompt": "Add a hat.", "src_video": "ok.png", "category": "teleport"},
        ],
        ["prompt", "src_video", "category"],
    )
    with pytest.raises(SuiteError) as info:
        load_user_suite(path)
    message = str(info.value)
    assert "3 bad row(s)" in message
    assert "row 2: src_video 'missing.mp4' does not exist" in message
    assert "row 3: empty prompt" in message
    assert "row 4: unknown openve category 'teleport'" in message
    assert "row 1" not in message
    assert "\n" not in message


def test_user_csv_without_required_columns_says_which(tmp_path: Path) -> None:
    """A CSV lacking src_video names the missing column and the expected format."""
    path = tmp_path / "x.csv"
    path.write_text("prompt,video\nAdd a hat.,a.mp4\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="missing required column\\(s\\) src_video"):
        load_user_suite(path)


def test_demo_suite_uses_real_clips_prompts_and_reference(tmp_path: Path) -> None:
    """The demo suite holds the real demo sources (no ground truth) and a RefVIE case with the demo reference."""
    suite = build_demo_suite(DEMO, tmp_path / "demo")
    by_kind = {(c.suite, c.category) for c in suite.cases}
    assert ("openve", "global_style") in by_kind and ("refvie", "subject") in by_kind
    forest = next(c for c in suite.cases if c.case_id.startswith("demo_openve_video_style"))
    assert "whimsical, storybook illustration style" in forest.prompt  # unquoted commas re-joined
    assert not any(c.has_target or c.has_mask for c in suite.cases)
    ref_case = next(c for c in suite.cases if c.suite == "refvie")
    assert "balancing stones" in ref_case.prompt
    assert (suite.path(ref_case.ref_image)).stat().st_size == (
        DEMO / "video/reference/reco_replace_088301.jpg"
    ).stat().st_size


def test_user_csv_with_unquoted_commas_in_prompts_is_repaired(tmp_path: Path) -> None:
    """Upstream manifests leave commas in prompts unquoted; the surplus fields are joined back into the prompt."""
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    path = tmp_path / "up.csv"
    path.write_text("prompt,src_video\nRender it in a soft, warm, watercolor style.,a.png\n", encoding="utf-8")
    case = load_user_suite(path).cases[0]
    assert case.prompt == "Render it in a soft, warm, watercolor style."
    assert case.src_video == "a.png" and case.category == "global_style"


def test_resaving_a_suite_folder_drops_media_of_removed_cases(small_suite: Suite, tmp_path: Path) -> None:
    """A suite re-saved with fewer cases leaves no stray media behind (DVC would version them otherwise)."""
    folder = tmp_path / "s"
    full = save_suite(small_suite, folder)
    dropped = full.cases[-1].case_id
    save_suite(Suite(full.name, full.root, full.cases[:-1]), folder)
    assert not (folder / "media" / dropped).exists()
    assert len(load_suite(folder, verify=True).cases) == len(full.cases) - 1
