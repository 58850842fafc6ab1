"""The evaluation report (`evaluation.json`): what the approvers see and what the registry stores.

The cut-off and the anomaly events are decided by `pipeline_evaluation` (issue 10's pure functions);
this module only computes the score distribution and lays the report out. Field names are the
contract with `approval.report` (tests/unit/approval check the two agree).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evaluation_job.scores import ScoredRow

REPORT_VERSION = 1
TOP_EVENTS = 5
WINDOW_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class Event:
    start: str
    end: str
    peak_window: str
    peak_score: float
    windows: int
    observed_passengers: float
    expected_passengers: float


@dataclass(frozen=True)
class Decisions:
    cutoff: float
    method: str
    flagged_windows: int
    events: tuple[Event, ...]


def quantile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = fraction * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def score_distribution(rows: Sequence[ScoredRow]) -> dict[str, float]:
    scores = sorted(row.score for row in rows)
    mean = sum(scores) / len(scores)
    return {
        "min": scores[0],
        "p50": quantile(scores, 0.5),
        "p90": quantile(scores, 0.9),
        "p99": quantile(scores, 0.99),
        "max": scores[-1],
        "mean": mean,
        "stdev": math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores)),
    }


def build_report(rows: Sequence[ScoredRow], decisions: Decisions, execution_arn: str) -> dict[str, Any]:
    events = [event.__dict__ for event in decisions.events]
    top = sorted(events, key=lambda event: event["peak_score"], reverse=True)[:TOP_EVENTS]
    return {
        "report_version": REPORT_VERSION,
        "pipeline_execution_arn": execution_arn,
        "rows_scored": len(rows),
        "first_window": rows[0].window_start.strftime(WINDOW_FORMAT),
        "last_window": rows[-1].window_start.strftime(WINDOW_FORMAT),
        "score_distribution": score_distribution(rows),
        "cutoff": {"value": decisions.cutoff, "method": decisions.method},
        "flagged_windows": decisions.flagged_windows,
        "anomaly_event_count": len(events),
        "events": events,
        "top_events": top,
    }
