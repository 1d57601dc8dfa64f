"""Released-format RefVIE parquet chunks built from the demo media at test time.

Columns as released: `iid, prompt, src_video, tgt_video, ref_image_bytes` (the reference embedded
as JPEG bytes, or null), paths relative to a video root (the demo folder here).
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tests.demo_data import DEMO_REF, DEMO_VIDEO

DEMO_IMAGE = "image/source/omniedit_env_omniedit_env_task_env_lighting_133656.jpg"
SCHEMA = pa.schema(
    [
        ("iid", pa.string()),
        ("prompt", pa.string()),
        ("src_video", pa.string()),
        ("tgt_video", pa.string()),
        ("ref_image_bytes", pa.binary()),
    ]
)


def jpeg_bytes(demo_dir: Path, side: int = 48) -> bytes:
    """The demo reference still, shrunk and re-encoded as a JPEG (what the released chunks embed)."""
    with Image.open(demo_dir / DEMO_REF) as img:
        small = img.convert("RGB").resize((side, side))
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def refvie_rows(demo_dir: Path) -> list[dict]:
    """Five rows: two good (video, image), a null reference, undecodable bytes, a repeated iid."""
    ref = jpeg_bytes(demo_dir)
    return [
        {
            "iid": "rv-001",
            "prompt": "replace the stones",
            "src_video": DEMO_VIDEO,
            "tgt_video": DEMO_VIDEO,
            "ref_image_bytes": ref,
        },
        {
            "iid": "rv-002",
            "prompt": "add a lamp",
            "src_video": DEMO_VIDEO,
            "tgt_video": DEMO_VIDEO,
            "ref_image_bytes": None,
        },
        {
            "iid": "rv-003",
            "prompt": "add a cat",
            "src_video": DEMO_VIDEO,
            "tgt_video": DEMO_VIDEO,
            "ref_image_bytes": b"\xff\xd8 not a jpeg",
        },
        {
            "iid": "rv-004",
            "prompt": "warm light",
            "src_video": DEMO_IMAGE,
            "tgt_video": DEMO_IMAGE,
            "ref_image_bytes": ref,
        },
        {
            "iid": "rv-001",
            "prompt": "other prompt",
            "src_video": DEMO_IMAGE,
            "tgt_video": DEMO_IMAGE,
            "ref_image_bytes": ref,
        },
    ]


def write_chunks(folder: Path, rows: list[dict], per_chunk: int = 3, schema: pa.Schema = SCHEMA) -> list[Path]:
    """`chunk_00000.parquet`, ... with `per_chunk` rows each, as the release splits them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, len(rows), per_chunk)):
        path = folder / f"chunk_{n:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows[start : start + per_chunk], schema=schema), path)
        paths.append(path)
    return paths
