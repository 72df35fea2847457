"""The study report: one self-contained HTML page of interactive figures, a static PNG and SVG per
figure, every table as Parquet/CSV.
"""

from __future__ import annotations

from matteralign.report.build import build_report, report_study

__all__ = ["build_report", "report_study"]
