"""The HTML cells of the report: escaping, number formats per metric, score pills and score tables.

Shared by every report section in `render.py`; pure string functions of the data.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import pandas as pd

from kiwi_platform.evaluation.metrics import METRICS


def html_text(value: Any) -> str:
    """Escape a value for HTML text and attributes."""
    return escape(str(value), quote=True)


def fmt_num(value: Any, column: str = "", judge: bool = False) -> str:
    """Counts as integers, judge scores (1-5) to 0.01, PSNR in dB to 0.1, other metrics to 0.001."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html_text(value)
    if math.isnan(v):
        return "–"
    if column == "n":
        return str(int(v))
    if judge or column not in METRICS:
        return f"{v:.2f}"
    return f"{v:.1f}" if column.endswith("psnr") else f"{v:.3f}"


def pill(value: float, text: str) -> str:
    """A 1-5 judge score on a pill coloured red (1) through amber to green (5)."""
    hue = max(0.0, min(1.0, (value - 1) / 4)) * 130
    return f'<span class="pill" style="background:hsl({hue:.0f},68%,90%);color:hsl({hue:.0f},60%,26%)">{text}</span>'


def label(column: str) -> str:
    return column.replace("_", " ")


def score_table(name: str, table: pd.DataFrame) -> str:
    """One benchmark table (categories x columns, `overall` last and bold); judge cells tinted by score."""
    judge = name.endswith("_judge")
    cols = [c for c in table.columns if c == "n" or table[c].notna().any()]
    head = "".join(
        f'<th title="{html_text(METRICS[c].description if c in METRICS else c)}">{html_text(label(c))}</th>'
        for c in cols
    )
    rows = []
    for category, row in table.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            na = isinstance(v, float) and math.isnan(v)
            text = fmt_num(v, c, judge)
            cells.append(
                f"<td{' class=na' if na else ''}>{pill(float(v), text) if judge and c != 'n' and not na else text}</td>"
            )
        cls = ' class="overall"' if category == "overall" else ""
        rows.append(f"<tr{cls}><td>{html_text(label(category))}</td>{''.join(cells)}</tr>")
    return f'<table class="scores{" judge" if judge else ""}" data-table="{html_text(name)}"><thead><tr><th>category</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
