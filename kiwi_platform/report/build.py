"""`build_report`: collect, render and write a model version's report in one call."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kiwi_platform.lib.files import write_text_atomic
from kiwi_platform.report.collect import collect_report
from kiwi_platform.report.render import render_html
from kiwi_platform.resources.tracking import MlflowTracking


def build_report(tracking: MlflowTracking, ref: str, out: str | Path) -> Path:
    """Write the self-contained HTML report of `ref` (models:/name@alias, models:/name/N or a run id) to `out`.

    Raises KiwiUserError when `ref` cannot be resolved; a version that was never evaluated still gets
    a report, with a "Not evaluated yet" section in place of the scores.
    """
    with tempfile.TemporaryDirectory(prefix="kiwi-report-") as work:
        html = render_html(collect_report(tracking, ref, work))
    return write_text_atomic(out, html)
