"""Tiny benchmarks in the released formats, built from the demo media (a few rows each).

Layouts follow upstream's defaults: OpenVE-Bench paths relative to `benchmark/`, RefVIE-Bench paths
relative to `benchmark/RefVIE-Bench/`, ImgEdit ids relative to `benchmark/ImgEdit/singleturn/`.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import yaml

from tests.demo_data import DEMO_REF, DEMO_VIDEO

OTHER_VIDEO = "video/source/0005e4ad9f49814db1d3f2296b911abf.mp4"
DEMO_IMAGE = "image/source/omniedit_env_omniedit_env_task_env_lighting_133656.jpg"


def _copy(demo: Path, rel: str, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(demo / rel, dst)


def openve_bench(demo: Path, base: Path, extra_rows: list[dict] | None = None) -> tuple[Path, Path]:
    """(benchmark_videos.csv, root): 2 judged rows (global_style, local_change, one prompt with a comma) + 2 skipped."""
    root = base / "benchmark"
    _copy(demo, OTHER_VIDEO, root / "OpenVE-Bench/videos/forest.mp4")
    _copy(demo, DEMO_VIDEO, root / "OpenVE-Bench/videos/bathtub.mp4")
    _copy(demo, OTHER_VIDEO, root / "OpenVE-Bench/videos/forest_creative.mp4")
    rows = [
        {
            "original_video": "OpenVE-Bench/videos/forest.mp4",
            "prompt": "Apply the Watercolor style to this video.",
            "edited_type": "global_style",
        },
        {
            "original_video": "OpenVE-Bench/videos/forest_creative.mp4",
            "prompt": "Make the trees dance.",
            "edited_type": "creative_edit",
        },
        {
            "original_video": "OpenVE-Bench/videos/bathtub.mp4",
            "prompt": "Replace the towel with grey stones, stacked.",
            "edited_type": "local_change",
        },
        {
            "original_video": "OpenVE-Bench/videos/bathtub.mp4",
            "prompt": "Add the subtitle 'hello'.",
            "edited_type": "subtitle_edit",
        },
    ] + list(extra_rows or [])
    path = root / "OpenVE-Bench/benchmark_videos.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["original_video", "prompt", "edited_type"])
        writer.writeheader()
        writer.writerows(rows)
    return path, root


def refvie_bench(demo: Path, base: Path, extra_items: list[dict] | None = None) -> tuple[Path, Path]:
    """(refvie_bench.yaml, root): one subject and one background item with the demo reference."""
    root = base / "benchmark/RefVIE-Bench"
    _copy(demo, DEMO_VIDEO, root / "videos/bathtub.mp4")
    _copy(demo, OTHER_VIDEO, root / "videos/forest.mp4")
    _copy(demo, DEMO_REF, root / "refs/stones.jpg")
    items = [
        {
            "src_video": "videos/bathtub.mp4",
            "instruction": "Replace the towel with the stones in the image.",
            "ref_img": "refs/stones.jpg",
            "edit_type": "subject",
        },
        {
            "src_video": "videos/forest.mp4",
            "instruction": "Replace the background with the scene in the image.",
            "ref_img": "refs/stones.jpg",
            "edit_type": "background",
        },
    ] + list(extra_items or [])
    path = root / "refvie_bench.yaml"
    path.write_text(yaml.safe_dump(items, sort_keys=False), encoding="utf-8")
    return path, root


def imgedit_singleturn(demo: Path, base: Path, extra: dict | None = None) -> tuple[Path, Path]:
    """(singleturn.json, root): two single-turn image edits of the demo still."""
    root = base / "benchmark/ImgEdit/singleturn"
    _copy(demo, DEMO_IMAGE, root / "animal/0001.jpg")
    data = {
        "1": {"id": "animal/0001.jpg", "prompt": "Change the setting to golden hour.", "edit_type": "background"},
        "2": {"id": "animal/0001.jpg", "prompt": "Make it look like a watercolor painting.", "edit_type": "style"},
        **(extra or {}),
    }
    path = root / "singleturn.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path, root
