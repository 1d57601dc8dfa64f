"""ReportData -> one self-contained HTML page (inline CSS, data-URI pictures, inline SVG, no JavaScript).

Pure function of the data: everything read from MLflow or disk was gathered by `collect.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from kiwi_platform.report.cells import fmt_num, html_text, label, score_table
from kiwi_platform.report.charts import category_chart_png
from kiwi_platform.report.data import Evaluation, ReportData, StageArtifacts
from kiwi_platform.report.embed import png_bytes_data_uri, png_data_uri
from kiwi_platform.report.lineage_svg import STAGE_NAMES, lineage_svg
from kiwi_platform.report.reference import reference_table
from kiwi_platform.report.style import CSS

SUITE_SHORT = {"openve": "OpenVE", "refvie": "RefVIE"}  # benchmarks with published rows
SUITE_TITLES = {
    "openve": "OpenVE-style instruction suite",
    "refvie": "RefVIE-style reference suite",
    "imgedit": "ImgEdit single-turn image suite",
}
KPI_METRICS = (
    ("openve/overall", "OpenVE overall", "judge, 1–5"),
    ("refvie/overall", "RefVIE overall", "judge, 1–5"),
    ("offline/preservation_ssim", "Preservation SSIM", "outside the edit region"),
    ("offline/temporal_consistency", "Temporal consistency", "0–1, higher = steadier"),
    ("offline/target_psnr", "Target PSNR", "dB vs ground truth"),
)
CASE_COLUMNS = (
    "case_id",
    "suite",
    "category",
    "prompt",
    "judge_score",
    "preservation_ssim",
    "target_psnr",
    "temporal_consistency",
    "reference_fidelity",
    "metrics_error",
    "judge_error",
)
NOT_EVALUATED = "Not evaluated yet"


def _img(path: Path | None, alt: str, caption: str = "") -> str:
    if path is None or not Path(path).is_file():
        return ""
    cap = f"<figcaption>{html_text(caption)}</figcaption>" if caption else ""
    return f'<figure><img class="fig" alt="{html_text(alt)}" src="{png_data_uri(path)}">{cap}</figure>'


def _header(data: ReportData) -> str:
    lin = data.lineage
    badges = " ".join(f'<span class="badge plain">@{html_text(a)}</span>' for a in lin.aliases)
    top = next((s for s in lin.stages if s.model_version == lin.version), lin.stages[0] if lin.stages else None)
    meta = [("Generated", data.generated_at), ("Requested", data.ref), ("MLflow run", data.run_id)]
    if top:
        meta += [("Code", top.code_git_sha[:12] or "–"), ("Checkpoint", top.checkpoint_dir or "–")]
    meta_html = "".join(f"<span>{html_text(k)}</span><b class=mono>{html_text(v)}</b>" for k, v in meta)
    return (
        f'<header class="top"><div><div class="sub">Kiwi-Edit model report</div>'
        f"<h1>{html_text(lin.registered_model)} <span class=sub>v{html_text(lin.version)}</span> {badges}</h1>"
        f'<div class="sub mono">{html_text(lin.model)}</div></div><div class="meta">{meta_html}</div></header>'
    )


def _kpis(data: ReportData) -> str:
    cards = []
    if data.evaluation is not None:
        headline = data.evaluation.headline
        for key, label, note in KPI_METRICS:
            if key in headline:
                cards.append((label, fmt_num(headline[key], key.rsplit("/", 1)[-1], judge="offline" not in key), note))
        cards.append(
            ("Cases", str(data.evaluation.summary.get("cases", "–")), str(data.evaluation.summary.get("suite", "")))
        )
    else:
        cards.append(("Evaluation", "–", NOT_EVALUATED.lower()))
    promo = data.promotion
    status = promo["status"] if promo else "no decision"
    cards.append(("Promotion", status, f"alias {promo.get('alias', '')}" if promo else "not gated yet"))
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="label">{html_text(label)}</div><div class="value">{html_text(v)}</div><div class="note">{html_text(n)}</div></div>'
            for label, v, n in cards
        )
        + "</div>"
    )


def _promotion(data: ReportData) -> str:
    p = data.promotion
    if p is None:
        body = '<p class="sub">No promotion decision recorded for this version (the <code>promoted_model</code> asset has not gated it).</p>'
    else:
        badge = "good" if p.get("promoted") else "bad"
        champion = f"v{p['champion']}" if p.get("champion") else "none (first model)"
        reasons = "".join(f"<li>{html_text(r)}</li>" for r in p.get("reasons") or []) or "<li>no reasons recorded</li>"
        replaced = (
            f"<div class=sub>later replaced by v{html_text(p['replaced_by'])}</div>" if p.get("replaced_by") else ""
        )
        body = (
            f'<div class="decision"><div><span class="badge {badge}" data-promotion="{html_text(p["status"])}">{html_text(p["status"])}</span></div>'
            f"<div><div>candidate <b>v{html_text(p.get('candidate', data.lineage.version))}</b> vs champion <b>{html_text(champion)}</b>"
            f" for alias <b>@{html_text(p.get('alias', 'champion'))}</b> <span class=sub>· {html_text(p.get('at', ''))}</span></div>"
            f"<ul>{reasons}</ul>{replaced}</div></div>"
        )
    return f'<section class="card" id="promotion"><h2>Promotion decision</h2>{body}</section>'


def _scores(ev: Evaluation | None, note: str) -> str:
    if ev is None:
        return (
            f'<section class="card" id="scores"><h2>Benchmark scores</h2><div class="notice" data-state="not-evaluated">'
            f"<b>{NOT_EVALUATED}.</b> {html_text(note)} Materialize <code>benchmark_results</code> "
            f"(<code>kiwi materialize -s benchmark_results</code>) to score it; this section then shows the "
            f"tables, charts and before/after strips.</div></section>"
        )
    parts = []
    if not ev.summary.get("judged"):
        parts.append('<p class="sub">No VLM judge was configured for this evaluation: offline metrics only.</p>')
    charts = []
    for suite in sorted({n.split("_", 1)[0] for n in ev.tables}, key=lambda s: (s != "openve", s)):
        parts.append(f"<h3>{html_text(SUITE_TITLES.get(suite, suite))}</h3>")
        for kind, title in (("judge", "VLM judge scores (1–5)"), ("offline", "Offline metrics")):
            name = f"{suite}_{kind}"
            if name in ev.tables:
                parts.append(
                    f'<div class="sub">{title}</div><div class="tablewrap">{score_table(name, ev.tables[name])}</div>'
                )
                if kind == "judge" and suite in SUITE_SHORT:
                    parts.append(reference_table(ev.headline, suite))
                charts.append(
                    _chart(
                        name,
                        ev.tables[name],
                        f"{SUITE_SHORT.get(suite, suite)} · {'judge scores (1–5)' if kind == 'judge' else 'offline metrics'}",
                    )
                )
    if any(charts):
        parts.append(f'<h3>Per category</h3><div class="charts">{"".join(charts)}</div>')
    return f'<section class="card" id="scores"><h2>Benchmark scores</h2>{"".join(parts)}{_cases(ev)}</section>'


def _chart(name: str, table: pd.DataFrame, title: str) -> str:
    png = category_chart_png(name, table, title)
    return (
        f'<figure><img class="fig" alt="{html_text(name)} per-category chart" src="{png_bytes_data_uri(png)}"></figure>'
        if png
        else ""
    )


def _cases(ev: Evaluation) -> str:
    if ev.cases is None or ev.cases.empty:
        return ""
    cols = [c for c in CASE_COLUMNS if c in ev.cases.columns]
    head = "".join(f"<th>{html_text(label(c))}</th>" for c in cols)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c), c)}</td>" for c in cols) + "</tr>" for r in ev.cases.to_dict("records")
    )
    return (
        f"<details><summary>Per-case results ({len(ev.cases)} cases)</summary>"
        f'<table class="wrap"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>'
    )


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return fmt_num(value, column, judge=column.startswith("judge_"))
    return html_text(value)


def _strips(ev: Evaluation | None) -> str:
    if ev is None:
        return ""
    grids = sorted(k for k in ev.images if k.startswith("grid/"))
    if not grids:
        return ""
    figs = "".join(_img(ev.images[k], k, " / ".join(label(p) for p in k.split("/")[1:])) for k in grids)
    return (
        f'<section class="card" id="strips"><h2>Before / after</h2><p class="sub">Middle frame of each case: '
        f"source · output · target (when known) · reference (when given).</p><div class=strips>{figs}</div></section>"
    )


def _training(stages: Iterable[StageArtifacts]) -> str:
    cards = []
    for st in stages:
        losses = {k: v for k, v in st.metrics.items() if "loss" in k and "/" not in k}
        facts = " · ".join(f"{label(k)} {v:.4g}" for k, v in sorted(losses.items())[:3])
        pics = _img(st.loss_curve, f"stage {st.stage} loss curve") + _img(
            st.before_after, f"stage {st.stage} sample", "validation sample: source · output · target"
        )
        pics = pics or '<p class="sub">This stage logged no pictures.</p>'
        cards.append(
            f'<div class="stage"><h3>Stage {st.stage} · {html_text(STAGE_NAMES.get(st.stage, "training"))}</h3>'
            f'<div class="sub mono">run {html_text(st.run_id[:12])}</div><div class="sub">{html_text(facts)}</div>{pics}</div>'
        )
    if not cards:
        return ""
    return f'<section class="card" id="training"><h2>Training curves</h2><div class="stages">{"".join(cards)}</div></section>'


def _lineage(data: ReportData) -> str:
    lin = data.lineage
    stage_rows = "".join(
        f"<tr><td>{s.stage}</td><td>v{html_text(s.model_version)}</td><td class=mono>{html_text(s.run_id)}</td><td class=mono>{html_text(s.manifest_dvc_md5 or '–')}</td>"
        f"<td class=mono>{html_text(s.config_hash[:16] or '–')}</td><td class=mono>{html_text(s.code_git_sha[:12] or '–')}</td></tr>"
        for s in sorted(lin.stages, key=lambda s: s.stage)
    )
    files = "".join(
        f"<tr><td>{html_text(f.role)}</td><td class=mono>{html_text(f.path)}</td><td class=mono>{html_text(f.sha256)}</td></tr>"
        for f in lin.files()
    )
    return (
        f'<section class="card" id="lineage"><h2>Lineage</h2>{lineage_svg(lin, data.stage_batches)}'
        f"<details><summary>Stages ({len(lin.stages)})</summary><table><thead><tr><th>stage</th><th>version</th>"
        f"<th>MLflow run</th><th>manifest DVC md5</th><th>config</th><th>code</th></tr></thead><tbody>{stage_rows}</tbody></table></details>"
        f"<details><summary>Files with sha256 ({len(lin.files())})</summary><table class=wrap><thead><tr><th>role</th><th>path</th>"
        f"<th>sha256</th></tr></thead><tbody>{files}</tbody></table></details></section>"
    )


def _eval_details(ev: Evaluation | None) -> str:
    if ev is None:
        return ""
    s = ev.summary
    st = s.get("settings") or {}
    t = s.get("timings") or {}
    judge = (
        f"{s.get('judge_model')} ({s.get('judge_calls', 0)} calls, {s.get('judge_cached', 0)} cached)"
        if s.get("judged")
        else "none"
    )
    items = [
        ("Suite", f"{s.get('suite', '')} · hash {str(s.get('suite_hash', ''))[:12]}"),
        ("Checkpoint id", s.get("checkpoint_id", "")),
        (
            "Generation",
            f"{st.get('width')}×{st.get('height')}, {st.get('frames')} frames, {st.get('steps')} steps, seed {st.get('seed')}",
        ),
        ("Judge", judge),
        ("Time", f"{t.get('total_s', 0):.1f} s total, {t.get('cases_per_minute', 0):.1f} cases/min"),
        ("Results file", str(ev.results_path)),
    ]
    return (
        '<section class="card" id="eval-details"><h2>Evaluation details</h2><div class="meta">'
        + "".join(f"<span>{html_text(k)}</span><b class=mono>{html_text(v)}</b>" for k, v in items)
        + "</div></section>"
    )


def render_html(data: ReportData) -> str:
    """The whole page as one string."""
    title = f"{data.lineage.registered_model} v{data.lineage.version} · Kiwi-Edit report"
    body = "".join(
        [
            _header(data),
            _kpis(data),
            _promotion(data),
            _scores(data.evaluation, data.evaluation_note),
            _lineage(data),
            _strips(data.evaluation),
            _training(data.stages),
            _eval_details(data.evaluation),
        ]
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html_text(title)}</title><style>{CSS}</style></head><body><main>{body}"
        f"<footer>Generated by <code>kiwi report</code> · self-contained: no scripts, no network</footer></main></body></html>\n"
    )
