"""What each detector gives the backtest for one series, and where each detector's replay lives.

A detector replay takes one series (timestamps in order, possibly irregular, and their values) and
returns a score and a decision per row. The replays import their detector lazily, so the backtest of
one detector does not load the other's dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, cast


@dataclass(frozen=True)
class SeriesDetection:
    scores: Sequence[float]  # one per row, in [0, 1], higher is more anomalous
    is_anomaly: Sequence[bool]  # the detector's own decision at its configured threshold
    # More per-row columns for the output CSV (expected value, severity, event id, ...), each one value per row.
    extra_columns: Mapping[str, Sequence[object]] = field(default_factory=dict)
    # The detector's own decision rule at another threshold on the score scale (same scores, other
    # threshold), when it is more than "score >= threshold" (for example, an open anomaly is announced
    # once). The backtest's best-threshold sweep uses it; None means "score >= threshold".
    decide: Callable[[Sequence[float], float], Sequence[bool]] | None = None
    threshold: float | None = None  # the configured threshold on the score scale, when there is one

    def __post_init__(self) -> None:
        rows = len(self.scores)
        if len(self.is_anomaly) != rows or any(len(column) != rows for column in self.extra_columns.values()):
            raise ValueError("every column of a detection must have one value per row")


class SeriesDetector(Protocol):
    def __call__(self, timestamps: Sequence[datetime], values: Sequence[float]) -> SeriesDetection: ...


# name -> "module:function" of its replay.
DETECTORS: Mapping[str, str] = {
    "streaming": "backtest.streaming_replay:detect_series",
    "pipeline": "backtest.pipeline_replay:detect_series",
}


def load_detector(name: str) -> SeriesDetector:
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    module_name, function_name = DETECTORS[name].split(":")
    return cast(SeriesDetector, getattr(importlib.import_module(module_name), function_name))
