"""Tests for kiwi_platform.lib.expectations: the GX wrapper used by blocking asset checks."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kiwi_platform.lib import expectations as ex


def _good_frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": [f"p{i:03d}" for i in range(n)],
            "instruction": ["make the car red"] * n,
            "fps": np.full(n, 24.0),
            "frames": (np.arange(n) % 81) + 1,
            "split": ["train" if i % 5 else "val" for i in range(n)],
        }
    )


def _specs() -> list[ex.Expect]:
    return [
        ex.columns_present(["pair_id", "instruction", "fps", "frames", "split"]),
        ex.not_null("pair_id"),
        ex.unique("pair_id"),
        ex.non_blank("instruction"),
        ex.greater_than("fps", 0),
        ex.between("frames", 1, 81),
        ex.values_in_set("split", ["train", "val"]),
    ]


def _only(outcome: ex.ValidationOutcome, kind: str) -> ex.ExpectationOutcome:
    (match,) = [r for r in outcome.results if r.kind == kind]
    return match


def test_clean_table_passes_every_expectation() -> None:
    """A well-formed table passes, with one zero-count result per spec, in spec order."""
    outcome = ex.validate_dataframe(_good_frame(), _specs(), "clean")
    assert outcome.success
    assert [r.kind for r in outcome.results] == [s.kind for s in _specs()]
    assert all(r.success and r.unexpected_count == 0 for r in outcome.results)
    assert outcome.failed() == []
    assert outcome.row_count == 20


@pytest.mark.parametrize(
    ("spec", "column", "bad_values", "expected_count"),
    [
        (ex.not_null("pair_id"), "pair_id", {2: None, 7: None}, 2),
        (ex.unique("pair_id"), "pair_id", {3: "p000"}, 2),  # both rows of the pair count
        (ex.between("frames", 1, 81), "frames", {0: 0, 1: 82, 2: 500}, 3),
        (ex.non_blank("instruction"), "instruction", {4: "", 5: "   ", 6: "\t"}, 3),
        (ex.greater_than("fps", 0), "fps", {9: 0.0}, 1),
        (ex.values_in_set("split", ["train", "val"]), "split", {1: "tset"}, 1),
    ],
    ids=["null", "duplicate", "out_of_range", "blank", "fps_zero", "not_in_set"],
)
def test_each_helper_catches_its_violation(spec: ex.Expect, column: str, bad_values: dict, expected_count: int) -> None:
    """Each helper flags exactly the rows that break it and shows them as examples."""
    df = _good_frame()
    if df[column].dtype != object:
        df[column] = df[column].astype(object)
    for row, value in bad_values.items():
        df.at[row, column] = value
    outcome = ex.validate_dataframe(df, [spec], "violation")
    (result,) = outcome.results
    assert not outcome.success and not result.success
    assert result.unexpected_count == expected_count
    assert result.column == column
    shown = {v for v in result.unexpected_examples}
    assert shown <= set(bad_values.values()) | set(df[column])
    assert len(result.unexpected_examples) == min(expected_count, ex.MAX_EXAMPLES)
    assert result in outcome.failed()


def test_greater_than_is_strict_but_between_is_inclusive() -> None:
    """fps == 0 fails `greater_than(fps, 0)` while frames == 1 and 81 pass `between(1, 81)`."""
    df = pd.DataFrame({"fps": [0.0, 0.5], "frames": [1, 81]})
    outcome = ex.validate_dataframe(df, [ex.greater_than("fps", 0), ex.between("frames", 1, 81)], "bounds")
    assert [r.success for r in outcome.results] == [False, True]
    assert outcome.results[0].unexpected_examples == [0.0]


def test_missing_column_fails_with_clear_message_instead_of_crashing() -> None:
    """A table without `fps` fails the column checks that need it and names the column."""
    df = _good_frame().drop(columns=["fps"])
    outcome = ex.validate_dataframe(df, _specs(), "missing")
    assert not outcome.success
    present = _only(outcome, "columns_present")
    assert not present.success
    assert present.unexpected_count == 1 and present.unexpected_examples == ["fps"]
    fps = _only(outcome, "greater_than")
    assert not fps.success
    assert fps.unexpected_count is None
    assert fps.error == "column 'fps' is missing"
    assert {r.kind for r in outcome.failed()} == {"columns_present", "greater_than"}


def test_empty_table_with_the_right_columns_passes() -> None:
    """Zero rows is a valid (if dull) batch: every expectation passes."""
    outcome = ex.validate_dataframe(_good_frame().iloc[:0], _specs(), "empty")
    assert outcome.success, outcome.to_markdown()
    empty_object_frame = pd.DataFrame(columns=["pair_id", "instruction", "fps", "frames", "split"])
    assert ex.validate_dataframe(empty_object_frame, _specs(), "empty_object").success


def test_markdown_names_the_failed_expectation() -> None:
    """The markdown table for Dagster metadata shows the failing check and its examples."""
    df = _good_frame()
    df.loc[4, "instruction"] = "  "
    outcome = ex.validate_dataframe(df, _specs(), "md")
    markdown = outcome.to_markdown()
    assert "instruction is never blank" in markdown
    failing_row = next(line for line in markdown.splitlines() if "never blank" in line)
    assert "❌" in failing_row and "| 1 |" in failing_row
    passing_row = next(line for line in markdown.splitlines() if "fps > 0" in line)
    assert "✅" in passing_row
    assert len(markdown.splitlines()) == 2 + len(_specs())


def test_unknown_kind_is_a_clear_error() -> None:
    """A typo in a spec's kind raises ValueError naming it, before any validation runs."""
    with pytest.raises(ValueError, match="not_nul"):
        ex.validate_dataframe(_good_frame(), [ex.Expect("not_nul", "pair_id")], "typo")


def test_gx_class_name_works_as_escape_hatch() -> None:
    """Any GX 1.x expectation class can be used by name with its own kwargs."""
    spec = ex.Expect("ExpectColumnValuesToMatchRegex", "pair_id", {"regex": r"^p\d{3}$"}, "ids")
    df = _good_frame()
    assert ex.validate_dataframe(df, [spec], "hatch").success
    df.loc[0, "pair_id"] = "bad"
    result = ex.validate_dataframe(df, [spec], "hatch").results[0]
    assert not result.success and result.unexpected_examples == ["bad"]


def test_validation_prints_no_progress_bars_or_info_logs(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """GX's tqdm bars and INFO chatter stay off, so Dagster run logs stay readable."""
    with caplog.at_level(logging.INFO):
        ex.validate_dataframe(_good_frame(), _specs(), "quiet")
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out
    gx_records = [r for r in caplog.records if r.name.startswith("great_expectations")]
    assert [r for r in gx_records if r.levelno < logging.WARNING] == []


def test_importing_the_module_does_not_import_great_expectations() -> None:
    """Loading Dagster definitions stays fast: GX is only imported when a check runs."""
    code = (
        "import sys, kiwi_platform.lib.expectations as m; "
        "assert 'great_expectations' not in sys.modules, 'imported eagerly'; "
        "import pandas as pd; "
        "m.validate_dataframe(pd.DataFrame({'a': [1]}), [m.not_null('a')], 's'); "
        "assert 'great_expectations' in sys.modules; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
