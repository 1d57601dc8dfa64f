"""Per-category bar charts drawn for the report from the score tables (matplotlib, Agg backend).

The evaluation's own chart PNGs vary in size with the number of categories; drawing here gives every
chart the same size, fonts and palette as the page, so they read well side by side.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

PALETTE = ("#2f6fde", "#22a06b", "#e2a03f", "#8f6ad9", "#d9534f", "#3bb3c3")
SCORE_COLOR = "#1f2430"
OFFLINE_COLUMNS = (
    "preservation_ssim",
    "target_ssim",
    "temporal_consistency",
    "reference_fidelity",
    "region_agreement",
    "reference_embedding_similarity",
)
METRIC_COLOR = dict(zip(OFFLINE_COLUMNS, PALETTE))  # one colour per metric in every chart


def chart_columns(name: str, table: pd.DataFrame) -> list[str]:
    """What a table's chart plots: judge dimensions + score, or the offline metrics that live in [0, 1]."""
    wanted = [c for c in table.columns if c != "n"] if name.endswith("_judge") else list(OFFLINE_COLUMNS)
    return [c for c in wanted if c in table.columns and pd.to_numeric(table[c], errors="coerce").notna().any()]


def category_chart_png(name: str, table: pd.DataFrame, title: str) -> bytes | None:
    """PNG bytes of grouped bars (one group per category, `overall` last); None when nothing is plottable."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    columns = chart_columns(name, table)
    if not columns:
        return None
    judge = name.endswith("_judge")
    sep = "\n" if len(table.index) > 4 else " "
    cats = [str(c).replace("_", sep) for c in table.index]
    x = np.arange(len(cats))
    width = 0.82 / len(columns)
    fig, ax = plt.subplots(figsize=(6.4, 3.3), dpi=150)
    for i, col in enumerate(columns):
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        color = SCORE_COLOR if judge and col == "score" else METRIC_COLOR.get(col, PALETTE[i % len(PALETTE)])
        bars = ax.bar(
            x - 0.41 + width * (i + 0.5), np.nan_to_num(values), width * 0.92, color=color, label=col.replace("_", " ")
        )
        if len(columns) * len(cats) <= 24:
            for bar, v in zip(bars, values):
                if v == v:
                    ax.annotate(
                        f"{v:.2f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=5.5,
                        color="#4b5563",
                        xytext=(0, 1),
                        textcoords="offset points",
                    )
    ax.set_xticks(x, cats, fontsize=7.5)
    ax.set_ylim(0, 5.3 if judge else 1.08)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=9.5, loc="left", color="#1f2430", fontweight="bold")
    ax.grid(axis="y", color="#e5e7eb", lw=0.7)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#cbd5e1")
    if "overall" in list(table.index):
        ax.axvspan(len(cats) - 1.5, len(cats) - 0.5, color="#f1f5f9", zorder=0)
    below = -0.2 if sep == "\n" else -0.1  # two-line category labels need more room
    ax.legend(fontsize=6.5, frameon=False, ncol=min(3, len(columns)), loc="upper left", bbox_to_anchor=(0, below))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.12)
    plt.close(fig)
    return buf.getvalue()
