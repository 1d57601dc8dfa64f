"""The published Kiwi-Edit numbers, as reference rows beside our scores (judge 1-5, Gemini-2.5-Pro).

Why here: a team checking released weights or a fine-tune wants to see at once how far a checkpoint
is from the release and from the baselines the paper compares with. Rows are transcribed from the
paper's tables as the project page shows them (showlab/Kiwi-Edit `index.html` at 223572d: Table 2
OpenVE-Bench, Table 3 RefVIE-Bench); Runway Aleph's OpenVE row appears only in the paper's Table 2
on https://showlab.github.io/Kiwi-Edit/ (closed source). Keys are our headline names
(`openve/<category>`, `refvie/<subtask>/<dimension>`), so rows line up with `EvalResult.headline`.
Scores judged by another model or on other generation settings are not directly comparable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SOURCE_REPO = "Kiwi-Edit paper Table 2 (showlab/Kiwi-Edit index.html @ 223572d)"
SOURCE_PAGE = "Kiwi-Edit paper Table 2 (showlab.github.io/Kiwi-Edit)"
SOURCE_REFVIE = "Kiwi-Edit paper Table 3 (showlab/Kiwi-Edit index.html @ 223572d)"
OPENVE_KEYS = ("overall", "global_style", "background_change", "local_change", "local_remove", "local_add")
REFVIE_KEYS = (
    "subject/reference_fidelity",
    "subject/temporal_stability",
    "subject/physical_harmony",
    "background/reference_fidelity",
    "background/temporal_stability",
    "background/physical_harmony",
    "overall",
)


@dataclass(frozen=True)
class ReferenceRow:
    benchmark: str  # "openve" | "refvie"
    model: str
    detail: str  # DiT size and resolution as published
    source: str
    scores: dict[str, float]  # headline name without the benchmark prefix -> score
    release: bool = False  # the released Kiwi-Edit checkpoint's row


def _openve(model: str, detail: str, values: tuple[float, ...], source: str = SOURCE_REPO, release: bool = False):
    return ReferenceRow("openve", model, detail, source, dict(zip(OPENVE_KEYS, values)), release)


def _refvie(model: str, values: tuple[float, ...], release: bool = False) -> ReferenceRow:
    return ReferenceRow("refvie", model, "", SOURCE_REFVIE, dict(zip(REFVIE_KEYS, values)), release)


REFERENCE_ROWS: tuple[ReferenceRow, ...] = (
    _openve(
        "Kiwi-Edit (Stage-3 Instruct-Reference, released)",
        "5B, 1280×704",
        (3.02, 3.64, 2.64, 3.83, 2.63, 2.36),
        release=True,
    ),
    _openve("Kiwi-Edit (Stage-2 Instruct-Only)", "5B, 1280×704", (2.98, 3.54, 3.84, 2.57, 2.71, 2.25)),
    _openve("Kiwi-Edit (Stage-2 Instruct-Only)", "5B, 720×480", (2.92, 3.54, 3.80, 2.59, 2.55, 2.12)),
    _openve("OpenVE-Edit", "5B, 1280×704", (2.50, 3.16, 2.36, 2.98, 1.85, 2.15)),
    _openve("Lucy-Edit", "5B, 1280×704", (2.22, 2.27, 1.57, 3.20, 1.75, 2.30)),
    _openve("ICVE", "13B, 384×240", (2.18, 2.22, 1.62, 2.57, 2.51, 1.97)),
    _openve("DITTO", "14B, 832×480", (2.13, 4.01, 1.68, 2.03, 1.53, 1.41)),
    _openve("VACE", "14B, 1280×720", (1.57, 1.49, 1.55, 2.07, 1.46, 1.26)),
    _openve("InsViE", "2B, 720×480", (1.45, 2.20, 1.06, 1.48, 1.36, 1.17)),
    _openve("OmniVideo", "1.3B, 640×352", (1.19, 1.11, 1.18, 1.14, 1.14, 1.36)),
    _openve("Runway Aleph (closed source)", "1280×720", (3.49, 3.72, 2.62, 4.18, 4.16, 2.78), source=SOURCE_PAGE),
    _refvie("Kiwi-Edit (reference data only, released)", (3.98, 3.40, 3.34, 3.72, 2.90, 2.51, 3.31), release=True),
    _refvie("Kiwi-Edit (all data)", (3.51, 2.96, 2.91, 3.40, 2.58, 2.40, 2.96)),
    _refvie("Kling-O1 (closed source)", (4.75, 4.66, 4.60, 3.95, 3.21, 2.75, 3.99)),
    _refvie("Runway Aleph (closed source)", (3.79, 3.65, 3.58, 3.33, 2.81, 2.58, 3.29)),
)


def reference_rows(benchmark: str) -> list[ReferenceRow]:
    return [r for r in REFERENCE_ROWS if r.benchmark == benchmark]


def release_gap(headline: Mapping[str, float], benchmark: str) -> dict[str, float]:
    """Our score minus the released Kiwi-Edit's, for every published key we also have (negative = behind)."""
    release = next(r for r in REFERENCE_ROWS if r.benchmark == benchmark and r.release)
    out = {}
    for key, value in release.scores.items():
        ours = headline.get(f"{benchmark}/{key}")
        if ours is not None and not math.isnan(ours):
            out[key] = round(float(ours) - value, 4)
    return out


def reference_records(benchmark: str) -> list[dict]:
    """JSON-ready rows for metadata and results.json."""
    return [
        {"model": r.model, "detail": r.detail, "source": r.source, "release": r.release, "scores": r.scores}
        for r in reference_rows(benchmark)
    ]


def comparison_markdown(headline: Mapping[str, float], benchmark: str, label: str = "this checkpoint") -> str:
    """Our row above the published rows (same columns), each published row with its source, then the gap."""
    keys = OPENVE_KEYS if benchmark == "openve" else REFVIE_KEYS
    head = ["model", *keys, "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(keys) + ["---"]) + "|"]

    def cell(v: float | None) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

    ours = [cell(headline.get(f"{benchmark}/{k}")) for k in keys]
    lines.append("| " + " | ".join([f"**{label}**", *ours, "kiwi evaluate"]) + " |")
    for row in reference_rows(benchmark):
        name = f"{row.model} ({row.detail})" if row.detail else row.model
        lines.append("| " + " | ".join([name, *[cell(row.scores.get(k)) for k in keys], row.source]) + " |")
    gap = release_gap(headline, benchmark)
    if gap:
        lines.append("")
        lines.append("gap to the released Kiwi-Edit: " + ", ".join(f"{k} {v:+.2f}" for k, v in gap.items()))
    return "\n".join(lines)
