"""The per-batch contact sheet: source frame | target frame | mask overlay | reference, one row per pair."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CELL_H = 112
GAP = 4


def _cell(image: np.ndarray | None, height: int = CELL_H) -> Image.Image:
    if image is None:
        cell = Image.new("RGB", (height, height), (235, 235, 235))
        ImageDraw.Draw(cell).text((8, height // 2 - 6), "no reference", fill=(120, 120, 120))
        return cell
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.BILINEAR)


def mask_overlay(frame: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha: float = 0.5) -> np.ndarray:
    """Tint the masked pixels so the edited region is visible on the target frame."""
    out = frame.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(color, dtype=np.float32)
    return out.clip(0, 255).astype(np.uint8)


def contact_sheet(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]) -> Image.Image:
    """Rows of (source frame, target frame, edit mask, reference or None) side by side."""
    rows = []
    for source, target, mask, reference in items:
        cells = [_cell(source), _cell(target), _cell(mask_overlay(target, mask)), _cell(reference)]
        row = Image.new("RGB", (sum(c.width for c in cells) + GAP * (len(cells) - 1), CELL_H), "white")
        x = 0
        for c in cells:
            row.paste(c, (x, 0))
            x += c.width + GAP
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), len(rows) * (CELL_H + GAP) - GAP), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * (CELL_H + GAP)))
    return sheet
