"""Image sheets people look at in the Dagster UI: the quadruplet contact sheet and labelled grids.

The quadruplet sheet is source frame | target frame | mask overlay | reference, one row per pair.
A labelled grid is one row per group (an edit type, a reference origin) with a caption cell, so
a preview says what it shows without a legend elsewhere.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CELL_H = 112
GAP = 4
LABEL_W = 150
WHITE = (255, 255, 255)


def _cell(image: np.ndarray | None, height: int = CELL_H) -> Image.Image:
    if image is None:
        cell = Image.new("RGB", (height, height), (235, 235, 235))
        ImageDraw.Draw(cell).text((8, height // 2 - 6), "no reference", fill=(120, 120, 120))
        return cell
    img = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.BILINEAR)


def mask_overlay(frame: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha: float = 0.5) -> np.ndarray:
    """Tint the masked pixels so the edited region is visible on the target frame."""
    out = frame.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _row(cells: list[Image.Image], height: int) -> Image.Image:
    row = Image.new("RGB", (sum(c.width for c in cells) + GAP * (len(cells) - 1), height), WHITE)
    x = 0
    for c in cells:
        row.paste(c, (x, 0))
        x += c.width + GAP
    return row


def _stack(rows: list[Image.Image], height: int) -> Image.Image:
    sheet = Image.new("RGB", (max(r.width for r in rows), len(rows) * (height + GAP) - GAP), WHITE)
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * (height + GAP)))
    return sheet


def contact_sheet(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]) -> Image.Image:
    """Rows of (source frame, target frame, edit mask, reference or None) side by side."""
    rows = []
    for source, target, mask, reference in items:
        cells = [_cell(source), _cell(target), _cell(mask_overlay(target, mask)), _cell(reference)]
        rows.append(_row(cells, CELL_H))
    return _stack(rows, CELL_H)


def _label_cell(lines: list[str], height: int) -> Image.Image:
    cell = Image.new("RGB", (LABEL_W, height), (245, 245, 245))
    draw = ImageDraw.Draw(cell)
    for i, line in enumerate(lines):
        draw.text((6, 6 + 14 * i), line, fill=(20, 20, 20) if i == 0 else (90, 90, 90))
    return cell


def labelled_grid(groups: list[tuple[list[str], list[np.ndarray]]], height: int = CELL_H) -> Image.Image:
    """One row per group: a caption cell (first line bold-ish, then details), then its images."""
    rows = [
        _row([_label_cell(lines, height)] + [_cell(img, height) for img in images], height) for lines, images in groups
    ]
    return _stack(rows, height)
