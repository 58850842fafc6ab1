"""The local run's streaming summary: each group once, its root cause, and whether it matches an injected anomaly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local_mode.report import group_lines
from local_mode.streaming_sim import InjectedAnomaly, group_matches

INJECTED = InjectedAnomaly(
    "revenue",
    {"platform": "web", "marketplace": "de"},
    datetime(2026, 12, 2, 14, 0, tzinfo=UTC),
    datetime(2026, 12, 2, 14, 30, tzinfo=UTC),
    factor=0.2,
)


def record(start: str, end: str, top: dict[str, str], measure: str = "revenue", status: str = "new") -> dict[str, Any]:
    return {
        "group_id": f"{measure}-low-20261202T1405Z",
        "status": status,
        "measure": measure,
        "direction": "low",
        "severity": 87.3,
        "level": "total",
        "interval_start": start,
        "interval_end": end,
        "contributors": [
            {"dimensions": top, "share": 0.78},
            {"dimensions": {"platform": "ios", "marketplace": "us"}, "share": 0.22},
        ],
    }


def test_a_group_matches_by_measure_time_and_top_contributor_at_or_below_the_combination() -> None:
    inside = ("2026-12-02T14:05:00Z", "2026-12-02T14:10:00Z")
    assert group_matches(record(*inside, {"platform": "web", "marketplace": "de"}), INJECTED)
    below = InjectedAnomaly("revenue", {"marketplace": "de"}, INJECTED.start, INJECTED.end)
    assert group_matches(record(*inside, {"platform": "web", "marketplace": "de"}), below)
    assert not group_matches(record(*inside, {"platform": "ios", "marketplace": "de"}), INJECTED)
    assert not group_matches(record(*inside, {"platform": "web", "marketplace": "de"}, "views"), INJECTED)
    after = ("2026-12-02T14:30:00Z", "2026-12-02T14:35:00Z")
    assert not group_matches(record(*after, {"platform": "web", "marketplace": "de"}), INJECTED)


def test_the_summary_shows_each_group_once_with_root_cause_and_verdict() -> None:
    web_de = {"platform": "web", "marketplace": "de"}
    records = [
        record("2026-12-02T14:05:00Z", "2026-12-02T14:10:00Z", web_de),
        record("2026-12-02T14:10:00Z", "2026-12-02T14:15:00Z", web_de, status="ongoing"),
    ]
    lines = group_lines(records, [INJECTED])
    assert lines[0] == "  Anomaly groups: 1"
    assert "revenue low, severity 87" in lines[1] and "2026-12-02 14:05-14:15 UTC (2 intervals)" in lines[1]
    assert "78% in web/de" in lines[1] and "matches injected revenue x0.2 in web/de" in lines[1]
    assert "1 of 1" in lines[2] and lines[3].strip().startswith("DETECTED")
    assert lines[-1] == "  Groups matching no injected anomaly: 0"
    assert group_lines([], [INJECTED])[-2].strip().startswith("NOT DETECTED")
