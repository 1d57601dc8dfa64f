"""`kiwi report`: one self-contained HTML page per model version (scores, pictures, promotion, lineage)."""

from kiwi_platform.report.build import build_report
from kiwi_platform.report.collect import collect_report
from kiwi_platform.report.data import Evaluation, ReportData, StageArtifacts
from kiwi_platform.report.lineage_svg import lineage_svg
from kiwi_platform.report.render import render_html

__all__ = ["build_report", "collect_report", "render_html", "lineage_svg", "ReportData", "Evaluation", "StageArtifacts"]
