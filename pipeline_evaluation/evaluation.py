"""One call from a run's scored windows to its decisions: cut-off, flags, events, relative scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline_evaluation.alerts import alert_scores, onset_flags
from pipeline_evaluation.cutoff import (
    CUTOFF_CAP_LIMIT,
    CUTOFF_MAX_SHARE,
    CUTOFF_SPREADS,
    EXTEND_SPREADS,
    ScoreCutoff,
    elevated_windows,
    flag_windows,
    relative_scores,
    score_cutoff,
)
from pipeline_evaluation.events import (
    DEFAULT_MAX_GAP_WINDOWS,
    AnomalyEvent,
    event_ids_per_window,
    merge_events,
)


@dataclass(frozen=True)
class WindowsEvaluation:
    cutoff: ScoreCutoff
    flags: tuple[bool, ...]  # score at or above the cut-off
    event_ids: tuple[int | None, ...]  # the event each window belongs to
    events: tuple[AnomalyEvent, ...]
    relative_scores: tuple[float, ...]  # 0..1, 0.5 at the cut-off (see cutoff.relative_scores)
    # One decision per event (see pipeline_evaluation.alerts): true at each event's first flagged window.
    onsets: tuple[bool, ...] = ()
    # The relative score where it is the highest of the cut-off's block (a day) before it, else 0.
    alert_scores: tuple[float, ...] = ()

    @property
    def is_anomaly(self) -> tuple[bool, ...]:
        """The decision per window: its score is at or above the cut-off (``event_ids`` says which event
        each window belongs to; an event also spans the elevated and bridged windows around its flags)."""
        return self.flags


def evaluate_windows(
    window_starts: Sequence[datetime],
    observed: Sequence[float],
    expected: Sequence[float],
    scores: Sequence[float],
    *,
    spreads: float | None = CUTOFF_SPREADS,
    max_share: float = CUTOFF_MAX_SHARE,
    extend_spreads: float = EXTEND_SPREADS,
    max_gap_windows: int = DEFAULT_MAX_GAP_WINDOWS,
    length: timedelta | None = None,
    cap_limit: float = CUTOFF_CAP_LIMIT,
) -> WindowsEvaluation:
    """Cut-off from the scores, flags, events. Windows must be in time order."""
    cutoff = score_cutoff(
        window_starts, scores, spreads=spreads, max_share=max_share, extend_spreads=extend_spreads, cap_limit=cap_limit
    )
    flags = flag_windows(scores, cutoff)
    events = merge_events(
        window_starts,
        observed,
        expected,
        scores,
        flags,
        elevated=elevated_windows(scores, cutoff),
        max_gap_windows=max_gap_windows,
        length=length,
    )
    relative = relative_scores(scores, cutoff)
    return WindowsEvaluation(
        cutoff=cutoff,
        flags=flags,
        event_ids=event_ids_per_window(len(window_starts), events),
        events=events,
        relative_scores=relative,
        onsets=onset_flags(flags, events),
        alert_scores=alert_scores(window_starts, relative, cutoff.block_seconds),
    )
