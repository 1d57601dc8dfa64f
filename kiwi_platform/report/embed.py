"""Pictures as `data:` URIs, so the report is one file that opens anywhere, offline."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

MAX_WIDTH = 1400  # wider pictures are downscaled: the page never shows them larger, and the file stays small


def png_data_uri(path: str | Path, max_width: int = MAX_WIDTH) -> str:
    """A PNG data URI of an image file, downscaled to `max_width` if wider (other formats re-encoded as PNG)."""
    path = Path(path)
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        if img.format != "PNG" or img.width > max_width:
            img = img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB")
            if img.width > max_width:
                img = img.resize((max_width, round(img.height * max_width / img.width)), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=True)
            data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def png_bytes_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
