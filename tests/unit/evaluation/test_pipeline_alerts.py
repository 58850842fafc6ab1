"""One decision per anomaly: event onsets and alert scores, on small series worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_evaluation import alert_scores, evaluate_windows, merge_events, onset_flags

START = datetime(2025, 3, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hours(count: int) -> list[datetime]:
    return [START + index * HOUR for index in range(count)]


def test_an_event_is_one_decision_at_its_first_flagged_window() -> None:
    # Given an event over windows 2..6 whose first two windows are only elevated, and a second event at 9
    flags = [False, False, False, False, True, True, True, False, False, True]
    elevated = [False, False, True, True, True, True, True, False, False, True]
    scores = [0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 2.0, 0.0, 0.0, 2.0]
    events = merge_events(hours(10), [1.0] * 10, [1.0] * 10, scores, flags, elevated=elevated)

    # When the onsets are taken
    onsets = onset_flags(flags, events)

    # Then each event is decided once, where its score first reached the cut-off
    assert [event.first_index for event in events] == [2, 9]
    assert [index for index, onset in enumerate(onsets) if onset] == [4, 9]


def test_an_alert_score_is_kept_only_where_it_is_the_highest_of_the_horizon_before_it() -> None:
    # Given hourly scores: a rise to 0.9 that stays high, a lower bump, then a bump more than the horizon later
    scores = [0.1, 0.6, 0.9, 0.8, 0.9, 0.2, 0.7, 0.1, 0.1, 0.1, 0.5]

    # When alert scores are taken over a four-hour horizon
    alerts = alert_scores(hours(len(scores)), scores, horizon_seconds=4 * 3600)

    # Then the rise counts at each new high (0.6, then 0.9), a tie and lower values count nothing,
    # and 0.5 counts because the 0.9 and the 0.7 are more than four hours before it
    assert alerts == (0.1, 0.6, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5)


def test_any_threshold_on_alert_scores_gives_at_most_one_decision_per_steady_anomaly() -> None:
    # Given a long plateau of equal high scores in a quiet series
    scores = [0.1] * 5 + [0.8] * 20 + [0.1] * 5

    alerts = alert_scores(hours(len(scores)), scores, horizon_seconds=24 * 3600)

    # Then each threshold between the quiet and the plateau level sees one detection, at the plateau's start
    for threshold in (0.2, 0.5, 0.8):
        assert [index for index, value in enumerate(alerts) if value >= threshold] == [5]


def test_alert_scores_reject_mismatched_input_and_a_non_positive_horizon() -> None:
    with pytest.raises(ValueError, match="2 window starts for 1 scores"):
        alert_scores(hours(2), [0.1], horizon_seconds=3600)
    with pytest.raises(ValueError, match="horizon_seconds must be > 0"):
        alert_scores(hours(2), [0.1, 0.2], horizon_seconds=0)


def test_evaluate_windows_gives_onsets_and_alert_scores_over_the_cutoff_block() -> None:
    # Given ten days of half hours, every day peaking at 2.0-2.45 and one day holding a four-window anomaly
    starts = [START + index * timedelta(minutes=30) for index in range(480)]
    scores = [1.0] * 480
    for day in range(10):
        scores[day * 48 + 20] = 2.0 + 0.05 * day
    for index in range(5 * 48 + 30, 5 * 48 + 34):
        scores[index] = 9.0

    evaluation = evaluate_windows(starts, [1.0] * 480, [1.0] * 480, scores)

    # Then the anomaly is one event, decided once at its first window, and the alert scores keep that window
    assert len(evaluation.events) == 1
    assert [index for index, onset in enumerate(evaluation.onsets) if onset] == [5 * 48 + 30]
    assert evaluation.alert_scores[5 * 48 + 30] == evaluation.relative_scores[5 * 48 + 30]
    assert all(value == 0.0 for value in evaluation.alert_scores[5 * 48 + 31 : 5 * 48 + 34])
