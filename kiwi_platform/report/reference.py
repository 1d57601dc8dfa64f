"""The published Kiwi-Edit rows beside this version's judge scores, each labelled with its source.

Why in the report: the first question about a checkpoint is how far it is from the release; the
rows come from `evaluation.reference_scores` (paper tables as upstream published them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from kiwi_platform.evaluation.reference_scores import OPENVE_KEYS, REFVIE_KEYS, reference_rows
from kiwi_platform.report.cells import html_text, label


def _cell(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def reference_table(headline: Mapping[str, float], benchmark: str) -> str:
    """An HTML table: this version's row first, then every published row with its source."""
    keys = OPENVE_KEYS if benchmark == "openve" else REFVIE_KEYS
    head = "".join(f"<th>{html_text(label(k.replace('/', ' ')))}</th>" for k in keys)
    ours = "".join(f"<td>{_cell(headline.get(f'{benchmark}/{k}'))}</td>" for k in keys)
    rows = [f'<tr class="ours"><td><b>this version</b></td>{ours}<td>kiwi evaluate / benchmark_results</td></tr>']
    for row in reference_rows(benchmark):
        name = html_text(f"{row.model} ({row.detail})" if row.detail else row.model)
        cells = "".join(f"<td>{_cell(row.scores.get(k))}</td>" for k in keys)
        rows.append(
            f'<tr data-reference="{html_text(row.model)}"><td>{name}</td>{cells}<td class="sub">{html_text(row.source)}</td></tr>'
        )
    return (
        f'<div class="sub">Published results (judge 1–5, Gemini-2.5-Pro, the paper\'s settings)</div>'
        f'<div class="tablewrap"><table data-reference-table="{benchmark}"><thead><tr><th>model</th>{head}'
        f"<th>source</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
