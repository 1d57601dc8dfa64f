"""Aggregation follows upstream: OpenVE overall = mean of category means; RefVIE overall = mean over cases."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kiwi_platform.evaluation.aggregate import build_tables, headline_metrics, markdown_table, overall


def _rows() -> pd.DataFrame:
    """Hand-made per-case judge rows: openve local_add has 3 cases, global_style 1; refvie subject 3, background 1."""
    rows = []
    for score in (2.0, 3.0, 4.0):
        rows.append(
            {
                "case_id": f"a{score}",
                "suite": "openve",
                "category": "local_add",
                "judge_score": score,
                "judge_instruction_compliance": score,
                "judge_visual_quality": 3.0,
                "judge_detail_fidelity": 3.0,
                "preservation_psnr": 20.0,
                "target_l1": 0.1,
            }
        )
    rows.append(
        {
            "case_id": "g",
            "suite": "openve",
            "category": "global_style",
            "judge_score": 5.0,
            "judge_instruction_compliance": 5.0,
            "judge_visual_quality": 5.0,
            "judge_detail_fidelity": 5.0,
            "preservation_psnr": None,
            "target_l1": 0.3,
        }
    )
    for i, score in enumerate((1.0, 2.0, 3.0)):
        rows.append(
            {
                "case_id": f"s{i}",
                "suite": "refvie",
                "category": "subject",
                "judge_score": score,
                "judge_reference_fidelity": score,
                "judge_temporal_stability": score,
                "judge_physical_harmony": score,
                "preservation_psnr": 30.0,
                "target_l1": 0.2,
            }
        )
    rows.append(
        {
            "case_id": "b",
            "suite": "refvie",
            "category": "background",
            "judge_score": 5.0,
            "judge_reference_fidelity": 5.0,
            "judge_temporal_stability": 5.0,
            "judge_physical_harmony": 5.0,
            "preservation_psnr": 10.0,
            "target_l1": 0.4,
        }
    )
    return pd.DataFrame(rows)


def test_openve_overall_is_the_mean_of_category_means() -> None:
    """local_add mean 3, global_style mean 5 -> overall 4 (not the case mean 3.5)."""
    assert overall({"local_add": [2, 3, 4], "global_style": [5]}, "openve") == pytest.approx(4.0)
    table = build_tables(_rows(), judged=True)["openve_judge"]
    assert table.loc["local_add", "score"] == pytest.approx(3.0)
    assert table.loc["overall", "score"] == pytest.approx(4.0)
    assert table.loc["overall", "instruction_compliance"] == pytest.approx((3.0 + 5.0) / 2)
    assert int(table.loc["overall", "n"]) == 4


def test_refvie_overall_is_the_sample_weighted_mean() -> None:
    """subject cases 1,2,3 and one background 5 -> overall (1+2+3+5)/4 = 2.75 (not (2+5)/2 = 3.5)."""
    assert overall({"subject": [1, 2, 3], "background": [5]}, "refvie") == pytest.approx(2.75)
    table = build_tables(_rows(), judged=True)["refvie_judge"]
    assert table.loc["overall", "score"] == pytest.approx(2.75)
    assert list(table.index) == ["subject", "background", "overall"]


def test_missing_values_are_skipped_not_counted_as_zero() -> None:
    """A metric that does not apply (None) leaves the category mean of the others untouched."""
    assert overall({"a": [2.0, float("nan")], "b": [4.0]}, "openve") == pytest.approx(3.0)
    assert math.isnan(overall({"a": [None]}, "openve"))
    table = build_tables(_rows(), judged=True)["openve_offline"]
    assert math.isnan(table.loc["global_style", "preservation_psnr"])
    assert table.loc["overall", "preservation_psnr"] == pytest.approx(20.0)


def test_headline_metrics_have_flat_names_for_mlflow() -> None:
    """Headline names follow `<suite>/overall`, `<suite>/<category>/<dim>` and `offline/...`."""
    rows = _rows()
    head = headline_metrics(rows, build_tables(rows, judged=True))
    assert head["openve/overall"] == pytest.approx(4.0)
    assert head["refvie/overall"] == pytest.approx(2.75)
    assert head["openve/local_add"] == pytest.approx(3.0)
    assert head["openve/local_add/instruction_compliance"] == pytest.approx(3.0)
    assert head["refvie/background/reference_fidelity"] == pytest.approx(5.0)
    assert head["offline/target_l1"] == pytest.approx(rows["target_l1"].mean())
    assert head["offline/refvie/preservation_psnr"] == pytest.approx((30 * 3 + 10) / 4)
    assert all(isinstance(v, float) and not math.isnan(v) for v in head.values())


def test_offline_only_tables_when_no_judge() -> None:
    """Without a judge there are no judge tables and no judge headline metrics."""
    rows = _rows().drop(columns=[c for c in _rows().columns if c.startswith("judge_")])
    tables = build_tables(rows, judged=False)
    assert set(tables) == {"openve_offline", "refvie_offline"}
    assert not any(k.startswith(("openve/", "refvie/")) for k in headline_metrics(rows, tables))


def test_markdown_table_renders_numbers_counts_and_gaps() -> None:
    """The markdown has a header, one line per category, counts as integers and an en dash for NaN."""
    md = markdown_table(build_tables(_rows(), judged=True)["openve_offline"])
    lines = md.splitlines()
    assert lines[0].startswith("| category | preservation_psnr")
    assert any(line.startswith("| global_style | – |") for line in lines)
    assert lines[-1].startswith("| overall | 20.00 |") and lines[-1].endswith("| 4 |")


def test_wide_tables_are_split_so_no_column_is_cut_off() -> None:
    """With max_columns, a wide score table becomes several narrow tables that each repeat the category
    column and together hold every column and value of the whole table, in order."""
    table = build_tables(_rows(), judged=True)["openve_offline"]
    assert len(table.columns) == 3
    parts = markdown_table(table, max_columns=2).split("\n\n")
    assert len(parts) == 2
    headers = [part.splitlines()[0].strip("| ").split(" | ") for part in parts]
    assert all(h[0] == "category" and len(h) <= 3 for h in headers)
    assert [c for h in headers for c in h[1:]] == [str(c) for c in table.columns]
    whole = markdown_table(table).splitlines()
    for i, line in enumerate(whole[2:], start=2):  # each category row is the concatenation of its parts
        cells = [part.splitlines()[i].strip("| ").split(" | ") for part in parts]
        assert line.strip("| ").split(" | ") == cells[0][:1] + [c for row in cells for c in row[1:]]
