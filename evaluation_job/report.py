"""The evaluation report (`evaluation.json`): what the approvers see and what the registry stores.

The cut-off, the flags and the anomaly events are decided by `pipeline_evaluation.evaluate_windows`
(issue 10's pure functions, the same ones the local mode and the backtest use); this module only
computes the score distribution and lays the report out. Field names are the contract with
`approval.report` (tests/unit/evaluation check that `approval.report` reads what this writes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pipeline_evaluation import AnomalyEvent, ScoredWindows, WindowsEvaluation

REPORT_VERSION = 2
TOP_EVENTS = 5
# Window starts are UTC (the prep job's windows); the report says so once, in "time_zone".
WINDOW_FORMAT = "%Y-%m-%d %H:%M"


def quantile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = fraction * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def score_distribution(scores: Sequence[float]) -> dict[str, float]:
    ordered = sorted(scores)
    mean = sum(ordered) / len(ordered)
    return {
        "min": ordered[0],
        "p50": quantile(ordered, 0.5),
        "p90": quantile(ordered, 0.9),
        "p99": quantile(ordered, 0.99),
        "max": ordered[-1],
        "mean": mean,
        "stdev": math.sqrt(sum((score - mean) ** 2 for score in ordered) / len(ordered)),
    }


def report_event(event: AnomalyEvent) -> dict[str, Any]:
    """One event as the report, the mail and the page show it: passengers summed over its windows."""
    return {
        "event_id": event.event_id,
        "start": event.start.strftime(WINDOW_FORMAT),
        "end": event.end.strftime(WINDOW_FORMAT),
        "peak_window": event.peak_window.strftime(WINDOW_FORMAT),
        "peak_score": event.peak_score,
        "windows": event.windows,
        "observed_passengers": event.observed,
        "expected_passengers": event.expected,
        "direction": event.direction,
        "change": event.change,
    }


def build_report(windows: ScoredWindows, evaluation: WindowsEvaluation, execution_arn: str) -> dict[str, Any]:
    events = [report_event(event) for event in evaluation.events]
    top = sorted(events, key=lambda event: (-event["peak_score"], event["event_id"]))[:TOP_EVENTS]
    return {
        "report_version": REPORT_VERSION,
        "pipeline_execution_arn": execution_arn,
        "time_zone": "UTC",
        "rows_scored": len(windows),
        "first_window": windows.window_starts[0].strftime(WINDOW_FORMAT),
        "last_window": windows.window_starts[-1].strftime(WINDOW_FORMAT),
        "score_distribution": score_distribution(windows.scores),
        "cutoff": {**evaluation.cutoff.as_dict(), "method": evaluation.cutoff.describe()},
        "flagged_windows": sum(evaluation.flags),
        "anomalous_windows": sum(evaluation.is_anomaly),
        "anomaly_event_count": len(events),
        "events": events,
        "top_events": top,
    }
