"""Anomaly events: runs of flagged windows merged into one occurrence each, with what was seen and expected.

Consecutive flagged windows form one event. Two runs separated by at most ``max_gap_windows`` unflagged
windows are one event too (a storm does not stop being one storm because one half hour in it looked
ordinary); the bridged windows belong to the event. An event spans exactly its windows: it starts at its
first flagged window and ends where its last flagged window ends, so it is attributed to the windows that
are anomalous themselves. Its peak is its highest-scoring window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

# One unflagged half hour between two flagged ones does not split an event; two do.
DEFAULT_MAX_GAP_WINDOWS = 1


@dataclass(frozen=True)
class AnomalyEvent:
    """One anomaly: windows first..last (indices into the run's windows), with totals over them."""

    event_id: int
    start: datetime  # start of the first window
    end: datetime  # end of the last window (its start + the window length)
    first_index: int
    last_index: int
    windows: int
    peak_window: datetime
    peak_score: float
    observed: float  # summed over the event's windows
    expected: float
    peak_observed: float
    peak_expected: float

    @property
    def direction(self) -> str:
        """Whether the event is "above" or "below" expected, by its totals."""
        return "above" if self.observed >= self.expected else "below"

    @property
    def change(self) -> float | None:
        """Observed relative to expected, minus one (-0.55 = 55 % fewer); None when nothing was expected."""
        return self.observed / self.expected - 1.0 if self.expected > 0 else None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def as_dict(self) -> dict[str, Any]:
        change = self.change
        return {
            "event_id": self.event_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "windows": self.windows,
            "peak_window": self.peak_window.isoformat(),
            "peak_score": self.peak_score,
            "observed": self.observed,
            "expected": self.expected,
            "peak_observed": self.peak_observed,
            "peak_expected": self.peak_expected,
            "direction": self.direction,
            "change": change,
        }


def window_length(window_starts: Sequence[datetime]) -> timedelta:
    """The series' spacing: the median gap between consecutive window starts (one day for one window)."""
    if len(window_starts) < 2:
        return timedelta(days=1)
    gaps = np.diff(np.array([start.timestamp() for start in window_starts], dtype=np.float64))
    gaps = gaps[gaps > 0]
    return timedelta(seconds=float(np.median(gaps))) if len(gaps) else timedelta(days=1)


def merge_events(
    window_starts: Sequence[datetime],
    observed: Sequence[float],
    expected: Sequence[float],
    scores: Sequence[float],
    flags: Sequence[bool],
    *,
    elevated: Sequence[bool] | None = None,
    max_gap_windows: int = DEFAULT_MAX_GAP_WINDOWS,
    length: timedelta | None = None,
) -> tuple[AnomalyEvent, ...]:
    """Merge flagged windows into events, numbered 1, 2, ... in time order.

    With ``elevated`` (one bool per window, true for every flagged one too), an event also takes in the
    elevated windows next to its flagged ones: runs are built over flagged-or-elevated windows, and a run
    becomes an event only when it holds at least one flagged window. That way a storm whose hours all score
    high but only a few reach the cut-off is reported as one event over its hours, while elevated windows
    alone never make an event. ``length`` is the window length (default: the series' spacing); it only
    sets each event's end.
    """
    rows = len(window_starts)
    if not (len(observed) == len(expected) == len(scores) == len(flags) == rows):
        raise ValueError("window_starts, observed, expected, scores and flags must have one value per window")
    if elevated is not None and len(elevated) != rows:
        raise ValueError("elevated must have one value per window")
    if max_gap_windows < 0:
        raise ValueError(f"max_gap_windows must be >= 0, got {max_gap_windows}")
    length = length or window_length(window_starts)
    members = [index for index in range(rows) if flags[index] or (elevated is not None and elevated[index])]
    candidate_runs: list[tuple[int, int]] = []
    for index in members:
        if candidate_runs and index - candidate_runs[-1][1] - 1 <= max_gap_windows:
            candidate_runs[-1] = (candidate_runs[-1][0], index)
        else:
            candidate_runs.append((index, index))
    runs = [(first, last) for first, last in candidate_runs if any(flags[first : last + 1])]
    events = []
    for event_id, (first, last) in enumerate(runs, start=1):
        span = range(first, last + 1)
        peak = max(span, key=lambda index: (scores[index], -index))
        events.append(
            AnomalyEvent(
                event_id=event_id,
                start=window_starts[first],
                end=window_starts[last] + length,
                first_index=first,
                last_index=last,
                windows=last - first + 1,
                peak_window=window_starts[peak],
                peak_score=float(scores[peak]),
                observed=float(sum(observed[index] for index in span)),
                expected=float(sum(expected[index] for index in span)),
                peak_observed=float(observed[peak]),
                peak_expected=float(expected[peak]),
            )
        )
    return tuple(events)


def event_ids_per_window(rows: int, events: Sequence[AnomalyEvent]) -> tuple[int | None, ...]:
    """For each window, the id of the event it belongs to, or None."""
    ids: list[int | None] = [None] * rows
    for event in events:
        for index in range(event.first_index, event.last_index + 1):
            ids[index] = event.event_id
    return tuple(ids)
