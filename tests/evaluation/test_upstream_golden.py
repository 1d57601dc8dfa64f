"""Our judge parsing + aggregation give upstream's numbers, on answers recorded with upstream's arithmetic.

The fixture (tests/fixtures/upstream/judge_golden.json, made as judge_golden.README.md says) holds per-case judge
answers and the table a transcription of upstream's scripts computed from them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from kiwi_platform.evaluation.aggregate import judge_table
from kiwi_platform.judge import OPENVE_RUBRICS, REFVIE_RUBRICS, apply_cap, parse_answer

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures/upstream/judge_golden.json").read_text(encoding="utf-8"))


def _rows(suite: str, cases: list[dict], key: str, rubrics: dict) -> pd.DataFrame:
    rows = []
    for case in cases:
        category = case[key]
        row = {"case_id": f"{suite}_{case['idx']}", "suite": suite, "category": category}
        if case["answer"] is not None:  # upstream writes no record for a case the judge never answered
            rubric = rubrics[category]
            scores, capped = apply_cap(parse_answer(case["answer"], rubric).scores, rubric)
            assert not capped, "golden answers obey the prompts' cap rule"
            row.update({f"judge_{d}": float(v) for d, v in scores.items()})
            row["judge_score"] = sum(scores.values()) / len(scores)
        rows.append(row)
    return pd.DataFrame(rows)


def test_openve_table_equals_upstream_per_edited_type_and_overall() -> None:
    """OpenVE: per edited_type mean over all score entries and the mean-of-means overall match upstream to 1e-9."""
    expected = GOLDEN["openve"]["expected"]
    table = judge_table(_rows("openve", GOLDEN["openve"]["cases"], "edited_type", OPENVE_RUBRICS), "openve")
    assert set(table.index) - {"overall"} == set(expected["per_edited_type"])
    for edited_type, value in expected["per_edited_type"].items():
        assert table.loc[edited_type, "score"] == pytest.approx(value, abs=1e-9)
    assert table.loc["overall", "score"] == pytest.approx(expected["overall"], abs=1e-9)
    answered = sum(c["answer"] is not None for c in GOLDEN["openve"]["cases"])
    assert table.loc["overall", "n"] == answered < len(GOLDEN["openve"]["cases"])  # failed cases are left out


def test_refvie_table_equals_upstream_per_subtask_per_index_and_overall() -> None:
    """RefVIE: per subtask per-index means and averages, and the sample-weighted overall, match upstream to 1e-9."""
    expected = GOLDEN["refvie"]["expected"]
    table = judge_table(_rows("refvie", GOLDEN["refvie"]["cases"], "edit_type", REFVIE_RUBRICS), "refvie")
    dims = ["reference_fidelity", "temporal_stability", "physical_harmony"]
    for subtask in ("subject", "background"):
        for dim, value in zip(dims, expected[subtask]["per_index"]):
            assert table.loc[subtask, dim] == pytest.approx(value, abs=1e-9)
        assert table.loc[subtask, "score"] == pytest.approx(expected[subtask]["average"], abs=1e-9)
    assert table.loc["overall", "score"] == pytest.approx(expected["overall"], abs=1e-9)
    # sample-weighted, not the mean of the two subtasks (the fixture's subtasks differ in size)
    assert not math.isclose(
        expected["overall"], (expected["subject"]["average"] + expected["background"]["average"]) / 2
    )
