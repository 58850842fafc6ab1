"""The evaluation report the Evaluate step writes (`evaluation.json`), as the approval path reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

REPORT_FILE_NAME = "evaluation.json"
# The JSON paths later pipeline steps read through the property file (Std:JsonGet).
ROWS_SCORED_PATH = "rows_scored"
EVENT_COUNT_PATH = "anomaly_event_count"
CUTOFF_PATH = "cutoff.value"
MAX_TOP_EVENTS = 5


class ReportError(ValueError):
    """The report is missing a field or has the wrong shape; the message names it."""


@dataclass(frozen=True)
class ReportEvent:
    start: str
    end: str
    peak_window: str
    peak_score: float
    windows: int
    observed_passengers: float
    expected_passengers: float

    def as_item(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "peak_window": self.peak_window,
            "peak_score": self.peak_score,
            "windows": self.windows,
            "observed_passengers": self.observed_passengers,
            "expected_passengers": self.expected_passengers,
        }


@dataclass(frozen=True)
class ReportSummary:
    """What the mail, the page and the CLI show: the key figures and the top events."""

    rows_scored: int
    cutoff: float
    cutoff_method: str
    flagged_windows: int
    event_count: int
    score_min: float
    score_median: float
    score_p99: float
    score_max: float
    top_events: tuple[ReportEvent, ...]

    @classmethod
    def from_report(cls, report: Any) -> ReportSummary:
        if not isinstance(report, dict):
            raise ReportError("the evaluation report is not a JSON object")
        distribution = _field(report, "score_distribution", dict)
        cutoff = _field(report, "cutoff", dict)
        events = _field(report, "top_events", list)
        return cls(
            rows_scored=int(_field(report, "rows_scored", int)),
            cutoff=float(_field(cutoff, "value", (int, float), "cutoff.")),
            cutoff_method=str(_field(cutoff, "method", str, "cutoff.")),
            flagged_windows=int(_field(report, "flagged_windows", int)),
            event_count=int(_field(report, "anomaly_event_count", int)),
            score_min=float(_field(distribution, "min", (int, float), "score_distribution.")),
            score_median=float(_field(distribution, "p50", (int, float), "score_distribution.")),
            score_p99=float(_field(distribution, "p99", (int, float), "score_distribution.")),
            score_max=float(_field(distribution, "max", (int, float), "score_distribution.")),
            top_events=tuple(_event(item, index) for index, item in enumerate(events[:MAX_TOP_EVENTS])),
        )

    def as_item(self) -> dict[str, Any]:
        """The summary as stored with the approval request (DynamoDB numbers go in as strings via json)."""
        return {
            "rows_scored": self.rows_scored,
            "cutoff": self.cutoff,
            "cutoff_method": self.cutoff_method,
            "flagged_windows": self.flagged_windows,
            "event_count": self.event_count,
            "score_min": self.score_min,
            "score_median": self.score_median,
            "score_p99": self.score_p99,
            "score_max": self.score_max,
            "top_events": [event.as_item() for event in self.top_events],
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ReportSummary:
        return cls(
            rows_scored=int(item["rows_scored"]),
            cutoff=float(item["cutoff"]),
            cutoff_method=str(item["cutoff_method"]),
            flagged_windows=int(item["flagged_windows"]),
            event_count=int(item["event_count"]),
            score_min=float(item["score_min"]),
            score_median=float(item["score_median"]),
            score_p99=float(item["score_p99"]),
            score_max=float(item["score_max"]),
            top_events=tuple(_event(event, index) for index, event in enumerate(item["top_events"])),
        )


def parse_report(text: str | bytes) -> ReportSummary:
    try:
        report = json.loads(text)
    except ValueError as error:
        raise ReportError(f"the evaluation report is not JSON ({error})") from error
    return ReportSummary.from_report(report)


def _field(container: dict[str, Any], name: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
    if name not in container:
        raise ReportError(f"the evaluation report has no '{prefix}{name}'")
    value = container[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ReportError(f"the evaluation report's '{prefix}{name}' has the wrong type ({type(value).__name__})")
    return value


def _event(item: Any, index: int) -> ReportEvent:
    if not isinstance(item, dict):
        raise ReportError(f"the evaluation report's top_events[{index}] is not an object")
    prefix = f"top_events[{index}]."
    return ReportEvent(
        start=str(_field(item, "start", str, prefix)),
        end=str(_field(item, "end", str, prefix)),
        peak_window=str(_field(item, "peak_window", str, prefix)),
        peak_score=float(_field(item, "peak_score", (int, float), prefix)),
        windows=int(_field(item, "windows", int, prefix)),
        observed_passengers=float(_field(item, "observed_passengers", (int, float), prefix)),
        expected_passengers=float(_field(item, "expected_passengers", (int, float), prefix)),
    )
