"""`out/report.html`: one self-contained page with the run's charts and its anomaly groups.

Built from the out folder only (:mod:`local_mode.report_page.data`), so it can be rebuilt at any time with
`python -m local_mode.report_page --out out`; rendered by :mod:`local_mode.report_page.page`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app_config.settings import StreamingConfig
from local_mode.report_page.data import read_report_data
from local_mode.report_page.page import render_page

REPORT_FILE = "report.html"


def build_report_page(out: Path, config: StreamingConfig, *, now: datetime | None = None) -> Path:
    """Read `out` and write `out/report.html`; returns its path."""
    data = read_report_data(out, config)
    html = render_page(data, source=str(out), generated_at=now or datetime.now(UTC))
    path = out / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return path


__all__ = ["REPORT_FILE", "build_report_page"]
