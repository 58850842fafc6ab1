"""The README's "Alerts" and "Feedback" sections show what the code does."""

from __future__ import annotations

from pathlib import Path

from alert_group_records import web_de_revenue_drop, web_rollup_drop
from anomaly_detector.alerts import alert_message, alert_subject
from anomaly_detector.feedback import SUPPRESSION_MARGIN

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    return README[start : README.index("\n## ", start + 1)]


def test_the_example_subjects_are_the_ones_the_detector_writes() -> None:
    alerts = section("Alerts")
    assert alert_subject(web_de_revenue_drop()) in alerts
    assert alert_subject(web_rollup_drop(severity=88.4)) in alerts


def test_the_example_message_text_is_the_ones_the_detector_writes() -> None:
    text = alert_message(web_de_revenue_drop()).partition("Record:\n")[0]
    assert text in section("Alerts")


def test_the_documented_margin_is_the_codes() -> None:
    assert SUPPRESSION_MARGIN == 0.5
    assert "no more than 50 % larger" in section("Feedback")
