"""Decisions from the pipeline's scores: the cut-off, each window's flag, and anomaly events.

Pure functions, no AWS and no I/O, so the same code runs in the pipeline's Evaluate step, in the local
mode and in the backtest. The inputs are what the batch transform produces for every window: its start,
the observed passengers, the expected passengers and Random Cut Forest's score.

    evaluation = evaluate_windows(window_starts, observed, expected, scores)
    evaluation.cutoff.value      # the score at and above which a window is anomalous
    evaluation.is_anomaly        # one bool per window: its score is at or above the cut-off
    evaluation.event_ids         # one event id (1, 2, ...) or None per window
    evaluation.events            # AnomalyEvent: start, end, peak window, peak score, observed vs expected
    evaluation.onsets            # one decision per event: true at each event's first flagged window
    evaluation.alert_scores      # relative score where it is the day's new high, else 0 (for threshold sweeps)

:func:`score_cutoff`, :func:`flag_windows` and :func:`merge_events` are the three stages, callable on their
own; :func:`read_transform_output` parses the batch transform's JSON Lines into those inputs.
"""

from pipeline_evaluation.alerts import alert_scores, onset_flags
from pipeline_evaluation.cutoff import (
    CUTOFF_CAP_LIMIT,
    CUTOFF_MAX_SHARE,
    CUTOFF_SPREADS,
    CUTOFF_SPREADS_PER_LN_BLOCK,
    EXTEND_SPREADS,
    ScoreCutoff,
    cutoff_spreads,
    elevated_windows,
    flag_windows,
    relative_scores,
    score_cutoff,
)
from pipeline_evaluation.evaluation import WindowsEvaluation, evaluate_windows
from pipeline_evaluation.events import DEFAULT_MAX_GAP_WINDOWS, AnomalyEvent, merge_events
from pipeline_evaluation.transform_output import ScoredWindows, TransformOutputError, read_transform_output

__all__ = [
    "CUTOFF_CAP_LIMIT",
    "CUTOFF_MAX_SHARE",
    "CUTOFF_SPREADS",
    "CUTOFF_SPREADS_PER_LN_BLOCK",
    "DEFAULT_MAX_GAP_WINDOWS",
    "EXTEND_SPREADS",
    "AnomalyEvent",
    "ScoreCutoff",
    "ScoredWindows",
    "TransformOutputError",
    "WindowsEvaluation",
    "alert_scores",
    "cutoff_spreads",
    "elevated_windows",
    "evaluate_windows",
    "flag_windows",
    "merge_events",
    "onset_flags",
    "read_transform_output",
    "relative_scores",
    "score_cutoff",
]
