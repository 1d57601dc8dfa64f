"""Small images people look at in the Dagster UI: before/after strips embedded as markdown."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kiwi_platform.media.clips import read_clip
from kiwi_platform.media.orientation import Orientation

THUMB_HEIGHT = 96


def _thumb(frame: np.ndarray, height: int = THUMB_HEIGHT) -> Image.Image:
    img = Image.fromarray(frame)
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.BILINEAR)


def first_frame(path: Path) -> np.ndarray:
    """The first frame of a raw media file as displayed (rotation / EXIF orientation applied), RGB."""
    import av
    from PIL import ImageOps

    if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    with av.open(str(path)) as container:
        frame = next(container.decode(container.streams.video[0]))
        return Orientation.of_frame(frame).apply(frame.to_ndarray(format="rgb24"))


def _strip(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Image.Image:
    lines = []
    for src_frame, tgt_frame in pairs:
        src, tgt = _thumb(src_frame), _thumb(tgt_frame)
        line = Image.new("RGB", (src.width + tgt.width + 4, THUMB_HEIGHT), "white")
        line.paste(src, (0, 0))
        line.paste(tgt, (src.width + 4, 0))
        lines.append(line)
    sheet = Image.new("RGB", (max(line.width for line in lines), len(lines) * (THUMB_HEIGHT + 4)), "white")
    for i, line in enumerate(lines):
        sheet.paste(line, (0, i * (THUMB_HEIGHT + 4)))
    return sheet


def pair_strip(root: Path, table: pd.DataFrame) -> Image.Image:
    """One line per pair of normalized clips: first source frame | first target frame."""
    recs = table.to_dict("records")
    return _strip([(read_clip(root / r["src_clip"], [0])[0], read_clip(root / r["tgt_clip"], [0])[0]) for r in recs])


def raw_pair_strip_markdown(root: Path, table: pd.DataFrame) -> str:
    """The accepted raw media as stored (before normalization): first source | target frame per row."""
    recs = table.to_dict("records")
    strip = _strip([(first_frame(root / r["src_file"]), first_frame(root / r["tgt_file"])) for r in recs])
    ids = ", ".join(f"`{r['pair_id']}`" for r in recs)
    return f"source | target as ingested, first frame ({ids})\n\n" + image_markdown(strip, "source | target")


def image_markdown(img: Image.Image, alt: str) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()})"


def pair_strip_markdown(root: Path, table: pd.DataFrame) -> str:
    """Markdown with the strip inline (source | target per row) and the pair ids it shows."""
    ids = ", ".join(f"`{p}`" for p in table["pair_id"])
    return f"source | target, first frame ({ids})\n\n" + image_markdown(pair_strip(root, table), "source | target")
