"""Pictures for people: a before/after grid per category and per-category bar charts (PNG).

Used as MLflow artifacts and in the HTML report. Grids show the middle frame of each case:
source | output | target (if known) | reference (if any), one row per case, at least 128 px high
so tiny test outputs stay visible. Charts use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from kiwi_platform.evaluation.media import CaseMedia
from kiwi_platform.lib.files import atomic_path

COLUMNS = ("source", "output", "target", "reference")
MIN_TILE_H = 128
LABEL_H = 16


def _tile(image: np.ndarray | None, height: int, width: int) -> Image.Image:
    tile = Image.new("RGB", (width, height), (235, 235, 235))
    if image is None:
        ImageDraw.Draw(tile).text((6, height // 2 - 6), "n/a", fill=(150, 150, 150), font=ImageFont.load_default())
        return tile
    img = Image.fromarray(image)
    img.thumbnail(
        (width, height), Image.Resampling.BICUBIC if max(img.size) > max(width, height) else Image.Resampling.NEAREST
    )
    if img.size[0] < width and img.size[1] < height:  # upscale small frames to fill the tile
        scale = min(width / img.size[0], height / img.size[1])
        img = img.resize((max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))), Image.Resampling.NEAREST)
    tile.paste(img, ((width - img.size[0]) // 2, (height - img.size[1]) // 2))
    return tile


def before_after_grid(items: Sequence[CaseMedia], out_path: str | Path, title: str = "") -> Path:
    """One PNG: a row per case (middle frame) with source | output | target | reference columns."""
    if not items:
        raise ValueError("no cases to draw")
    h0, w0 = items[0].output.shape[1:3]
    scale = max(1.0, MIN_TILE_H / h0)
    th, tw = int(h0 * scale), int(w0 * scale)
    font = ImageFont.load_default()
    top = LABEL_H * (2 if title else 1)
    canvas = Image.new("RGB", (tw * len(COLUMNS), top + len(items) * (th + LABEL_H)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill="black", font=font)
    for j, name in enumerate(COLUMNS):
        draw.text((j * tw + 4, top - LABEL_H + 2), name, fill="black", font=font)
    for i, media in enumerate(items):
        t = len(media.output) // 2
        y = top + i * (th + LABEL_H)
        draw.text((4, y + 2), f"{media.case.case_id}: {media.case.prompt[:90]}", fill=(60, 60, 60), font=font)
        frames = [media.source[t], media.output[t], None if media.target is None else media.target[t], media.reference]
        for j, frame in enumerate(frames):
            canvas.paste(_tile(frame, th, tw), (j * tw, y + LABEL_H))
    out = Path(out_path)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    return out


def category_bar_chart(
    table: pd.DataFrame,
    columns: Sequence[str],
    out_path: str | Path,
    title: str,
    ylim: tuple[float, float] | None = None,
    ylabel: str = "",
) -> Path:
    """Grouped bars: one group per category (the `overall` row last), one bar per column."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    columns = [c for c in columns if c in table.columns and table[c].notna().any()]
    if not columns:
        raise ValueError(f"no plottable columns in table for {title!r}")
    cats = list(table.index)
    x = np.arange(len(cats))
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(cats) + 2), 3.6), dpi=100)
    try:
        for k, col in enumerate(columns):
            values = table[col].astype(float).fillna(0.0).to_numpy()
            bars = ax.bar(x + (k - (len(columns) - 1) / 2) * width, values, width, label=col)
            ax.bar_label(
                bars,
                labels=[f"{v:.2f}" if not np.isnan(o) else "–" for v, o in zip(values, table[col].astype(float))],
                fontsize=7,
                padding=1,
            )
        ax.set_xticks(x, [c.replace("_", "\n") for c in cats], fontsize=8)
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        if len(columns) > 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        out = Path(out_path)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out
