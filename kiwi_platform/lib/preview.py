"""Small images people look at in the Dagster UI: before/after strips embedded as markdown."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.media.clips import read_clip

THUMB_HEIGHT = 96


def _thumb(frame: np.ndarray, height: int = THUMB_HEIGHT) -> Image.Image:
    img = Image.fromarray(frame)
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.BILINEAR)


def pair_strip(root: Path, table: pd.DataFrame) -> Image.Image:
    """One line per pair: first source frame | first target frame."""
    lines = []
    for rec in table.to_dict("records"):
        src = _thumb(read_clip(root / rec["src_clip"], [0])[0])
        tgt = _thumb(read_clip(root / rec["tgt_clip"], [0])[0])
        line = Image.new("RGB", (src.width + tgt.width + 4, THUMB_HEIGHT), "white")
        line.paste(src, (0, 0))
        line.paste(tgt, (src.width + 4, 0))
        lines.append(line)
    sheet = Image.new("RGB", (max(line.width for line in lines), len(lines) * (THUMB_HEIGHT + 4)), "white")
    for i, line in enumerate(lines):
        sheet.paste(line, (0, i * (THUMB_HEIGHT + 4)))
    return sheet


def image_markdown(img: Image.Image, alt: str) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()})"


def pair_strip_markdown(root: Path, table: pd.DataFrame) -> str:
    """Markdown with the strip inline (source | target per row) and the pair ids it shows."""
    ids = ", ".join(f"`{p}`" for p in table["pair_id"])
    return f"source | target, first frame ({ids})\n\n" + image_markdown(pair_strip(root, table), "source | target")
