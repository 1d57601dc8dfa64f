"""The pictures of one evaluation: a before/after grid per category and a bar chart per table.

Why apart from the run: which frames are kept while scoring (only the middle one, so samples cost
kilobytes, not gigabytes) and which columns each chart plots are drawing decisions; the run only
hands over the samples and tables. The drawing primitives are in `kiwi_platform.evaluation.visuals`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kiwi_platform.evaluation.media import CaseMedia
from kiwi_platform.evaluation.visuals import before_after_grid, category_bar_chart

OFFLINE_CHART_COLUMNS = (
    "preservation_ssim",
    "target_ssim",
    "temporal_consistency",
    "reference_fidelity",
    "region_agreement",
)


def middle_frame(media: CaseMedia) -> CaseMedia:
    """Only what the grid draws (the middle frame), so keeping samples costs kilobytes, not gigabytes."""
    t = len(media.output) // 2
    pick = lambda a: None if a is None else a[t : t + 1].copy()  # noqa: E731
    return CaseMedia(media.case, pick(media.source), pick(media.output), pick(media.target), None, media.reference)


def draw_images(
    out: Path, samples: dict[tuple[str, str], list[CaseMedia]], tables: dict[str, pd.DataFrame]
) -> dict[str, Path]:
    """Grids and charts under `out/images/`, keyed `grid/<suite>/<category>` and `chart/<table>`."""
    images: dict[str, Path] = {}
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for (suite_kind, category), items in sorted(samples.items()):
        images[f"grid/{suite_kind}/{category}"] = before_after_grid(
            items, folder / f"grid_{suite_kind}_{category}.png", title=f"{suite_kind} / {category}"
        )
    for name, table in tables.items():
        suite_kind, kind = name.split("_", 1)
        try:
            if kind == "judge":
                path = category_bar_chart(
                    table,
                    ["score"],
                    folder / f"chart_{name}.png",
                    f"{suite_kind}: judge score per category (1-5)",
                    ylim=(0, 5.4),
                )
            else:
                path = category_bar_chart(
                    table,
                    list(OFFLINE_CHART_COLUMNS),
                    folder / f"chart_{name}.png",
                    f"{suite_kind}: offline metrics per category",
                    ylim=(0, 1.1),
                )
        except ValueError:
            continue  # nothing plottable (e.g. every score missing)
        images[f"chart/{name}"] = path
    return images
