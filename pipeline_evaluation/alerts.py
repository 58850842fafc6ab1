"""One decision per anomaly: where an event is declared, and a score that says so for any threshold.

NAB-style evaluation, and a person reading alerts, count *decisions*: an anomaly that spans forty windows
is one thing to act on, and the moment that matters is when it starts. So besides each window's flag
(its score is at or above the cut-off) the evaluation gives:

- ``onset_flags``: true only at the first *flagged* window of each anomaly event: the event is declared
  where its score first reaches the cut-off (the elevated windows an event takes in before that do not
  move the decision earlier). An event's other windows belong to it (``event_ids``) but are not new
  decisions.
- ``alert_scores``: the window's relative score when it is higher than every score in the
  ``horizon`` before it (the cut-off's block: one day, shorter for short runs), else 0. Thresholding
  it at any level gives the windows where the scores first rise to that level within a day: at most
  one new decision per rising anomaly, whatever the threshold. It is what a threshold sweep (the
  backtest's best-threshold figure) should see, so that the sweep judges the same one-decision-per-
  anomaly logic as the pipeline's own cut-off, not the count of an event's windows.

Both are pure functions of values the evaluation already has; neither looks at labels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from pipeline_evaluation.events import AnomalyEvent


def onset_flags(flags: Sequence[bool], events: Sequence[AnomalyEvent]) -> tuple[bool, ...]:
    """True at the first flagged window of every event (every event holds one), false elsewhere."""
    onsets = [False] * len(flags)
    for event in events:
        first = next(index for index in range(event.first_index, event.last_index + 1) if flags[index])
        onsets[first] = True
    return tuple(onsets)


def alert_scores(
    window_starts: Sequence[datetime], scores: Sequence[float], horizon_seconds: float
) -> tuple[float, ...]:
    """Each score where it exceeds every score of the ``horizon_seconds`` before it, else 0.

    ``scores`` are non-negative (relative scores in 0..1); windows in time order. The first window
    has nothing before it and keeps its score. A running maximum over a sliding time window (a
    monotonic queue), so it costs one pass however long the horizon.
    """
    if len(window_starts) != len(scores):
        raise ValueError(f"{len(window_starts)} window starts for {len(scores)} scores")
    if not horizon_seconds > 0:
        raise ValueError(f"horizon_seconds must be > 0, got {horizon_seconds}")
    times = np.array([start.timestamp() for start in window_starts], dtype=np.float64)
    values = np.asarray(scores, dtype=np.float64)
    result = np.zeros(len(values))
    recent: deque[int] = deque()  # indices within the horizon, scores decreasing
    for index in range(len(values)):
        while recent and times[recent[0]] <= times[index] - horizon_seconds:
            recent.popleft()
        if not recent or values[index] > values[recent[0]]:
            result[index] = values[index]
        while recent and values[recent[-1]] <= values[index]:
            recent.pop()
        recent.append(index)
    return tuple(float(value) for value in result)
