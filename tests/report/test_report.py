"""`kiwi report`: one self-contained HTML page per model version, built from a real MLflow store."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.report import build_report
from tests.report.conftest import BATCH, PROMOTION_REASON, Store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> list[str]:
    return re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)


def _table(html: str, name: str) -> str:
    match = re.search(rf'<table class="scores[^"]*" data-table="{name}">.*?</table>', html, re.S)
    assert match, f"table {name} missing"
    return match.group(0)


def test_champion_report_is_self_contained_with_scores_pictures_promotion_and_lineage(
    report_store: Store, tmp_path: Path
) -> None:
    """The champion's report is one offline file (no scripts, no remote links, pictures as PNG data URIs)
    showing the evaluation's table values, charts, grids, stage curves, the promotion and a lineage graph."""
    out = build_report(report_store.tracking, "models:/kiwi-edit@champion", tmp_path / "r" / "report.html")
    html = out.read_text(encoding="utf-8")

    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html, re.I)
    assert "http://" not in html and "https://" not in html
    images = _images(html)
    result = report_store.result
    grids = [k for k in result.images if k.startswith("grid/")]
    # every before/after grid, a chart per score table, loss curve + sample strip of each of the 3 stages
    assert len(grids) >= 2 and len(result.tables) == 4
    assert len(images) == len(grids) + len(result.tables) + 6
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)

    for name, table in result.tables.items():
        rendered = _table(html, name)
        for column in table.columns:
            value = table.loc["overall", column]
            if value == value and column != "n":
                digits = 1 if column.endswith("psnr") else 3 if name.endswith("offline") else 2
                assert re.search(rf">{value:.{digits}f}</(td|span)>", rendered), (name, column)
    assert f">{result.headline['openve/overall']:.2f}<" in html  # headline card
    assert result.headline["openve/overall"] == pytest.approx(11 / 3)  # fake judge 5, 4, 2
    # the paper's rows sit beside ours, labelled with their source
    assert 'data-reference-table="openve"' in html and 'data-reference-table="refvie"' in html
    assert "<td>3.02</td>" in html and "<td>3.31</td>" in html and "Kling-O1" in html
    assert "Kiwi-Edit paper Table 2 (showlab/Kiwi-Edit index.html @ 223572d)" in html

    assert 'data-promotion="promoted"' in html and PROMOTION_REASON in html
    svg = re.search(r'<svg class="lineage".*?</svg>', html, re.S).group(0)
    for stage in (1, 2, 3):
        assert f"Stage {stage} ·" in svg
        assert report_store.manifest_md5[stage][:8] in svg and report_store.manifest_md5[stage] not in svg  # shortened
        assert f"stage{stage}.parquet" in svg
    assert f"batch {BATCH}" in svg and "kiwi-edit v3" in svg and "@champion" in svg
    assert "clip_a.mp4" in svg and "more files" in svg  # 7 raw files: 4 drawn, the rest summarised
    assert svg.count('class="edge"') >= 3 + 3 + 2 + 1


def test_version_never_evaluated_gets_a_report_saying_so(report_store: Store, tmp_path: Path) -> None:
    """A version without evaluation results (v2) still gets a report: lineage and training, and a clear
    "Not evaluated yet" section instead of score tables; it has no promotion decision either."""
    html = build_report(report_store.tracking, "models:/kiwi-edit/2", tmp_path / "v2.html").read_text()
    assert "Not evaluated yet" in html and 'data-state="not-evaluated"' in html
    assert 'class="scores' not in html and "No promotion decision recorded" in html
    svg = re.search(r'<svg class="lineage".*?</svg>', html, re.S).group(0)
    assert "Stage 2 ·" in svg and "Stage 1 ·" in svg and "Stage 3 ·" not in svg and "kiwi-edit v2" in svg


def test_run_id_resolves_and_results_fall_back_to_the_mlflow_copy(report_store: Store, tmp_path: Path) -> None:
    """An MLflow run id names its model version; when the local results folder is gone, the copy that
    log_evaluation stored in the run's artifacts fills the report."""
    moved = tmp_path / "moved-eval"
    shutil.move(str(report_store.result.out_dir), moved)
    try:
        html = build_report(report_store.tracking, report_store.stage_runs[3], tmp_path / "by-run.html").read_text()
    finally:
        shutil.move(str(moved), report_store.result.out_dir)
    assert "kiwi-edit <span class=sub>v3</span>" in html
    assert "Not evaluated yet" not in html
    assert f">{report_store.result.tables['refvie_judge'].loc['overall', 'score']:.2f}</span>" in _table(
        html, "refvie_judge"
    )
    assert len(_images(html)) == len([k for k in report_store.result.images if k.startswith("grid/")]) + 4 + 6


@pytest.mark.parametrize(
    "ref", ["models:/kiwi-edit@nobody", "models:/kiwi-edit/99", "0123456789abcdef0123456789abcdef"]
)
def test_unknown_model_is_a_one_line_user_error_and_writes_nothing(
    report_store: Store, tmp_path: Path, ref: str
) -> None:
    """An alias, version or run id that does not exist raises KiwiUserError (one line) and leaves no file."""
    with pytest.raises(KiwiUserError) as info:
        build_report(report_store.tracking, ref, tmp_path / "nope.html")
    assert "\n" not in str(info.value) and str(info.value)
    assert not (tmp_path / "nope.html").exists()


def test_cli_writes_the_report_and_reports_errors(
    report_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kiwi report MODEL --out FILE` writes the page from the configured MLflow store; a bad ref fails."""
    from kiwi_platform.cli import report_cmd

    monkeypatch.setenv("KIWI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.setenv("KIWI_MLFLOW_TRACKING_URI", report_store.tracking.tracking_uri)
    monkeypatch.setenv("KIWI_MLFLOW_ARTIFACTS", report_store.tracking.artifact_root)
    app = typer.Typer()
    report_cmd.register(app)
    app.command("noop")(lambda: None)  # two commands, so `report` stays a subcommand
    out = tmp_path / "cli.html"
    ok = CliRunner().invoke(app, ["report", "models:/kiwi-edit@champion", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.is_file() and "wrote" in ok.output and 'data-promotion="promoted"' in out.read_text()
    bad = CliRunner().invoke(app, ["report", "models:/kiwi-edit@nobody", "--out", str(tmp_path / "x.html")])
    assert isinstance(bad.exception, KiwiUserError) and not (tmp_path / "x.html").exists()
