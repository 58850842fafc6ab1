"""The cut-off, the flags and the anomaly events, on small series worked out by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from pipeline_evaluation import (
    AnomalyEvent,
    TransformOutputError,
    evaluate_windows,
    flag_windows,
    merge_events,
    read_transform_output,
    relative_scores,
    score_cutoff,
)

START = datetime(2025, 3, 3, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def half_hours(count: int) -> list[datetime]:
    return [START + index * HALF_HOUR for index in range(count)]


def daily_peaks(peaks: list[float], base: float = 1.0) -> list[float]:
    """48 half-hour scores per day, all `base` except one window per day at that day's peak."""
    scores = []
    for peak in peaks:
        day = [base] * 48
        day[20] = peak
        scores += day
    return scores


def test_cutoff_is_the_typical_daily_peak_plus_spreads_of_the_daily_peaks() -> None:
    # Given ten days whose highest scores are 2.0, 2.1, ..., 2.8 and one day peaking at 9.0
    peaks = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0]
    scores = daily_peaks(peaks)

    # When the cut-off is computed with 3 spreads
    cutoff = score_cutoff(half_hours(len(scores)), scores, spreads=3.0)

    # Then the typical peak is their median 2.45, the spread 1.4826 x MAD (0.25) and the cut-off 2.45 + 3 x 0.37065
    assert cutoff.blocks == 10
    assert cutoff.block_seconds == 86_400
    assert cutoff.typical_block_max == pytest.approx(2.45)
    assert cutoff.block_spread == pytest.approx(1.4826 * 0.25)
    assert cutoff.value == pytest.approx(2.45 + 3 * 1.4826 * 0.25)
    # And only the 9.0 window is flagged: ordinary daily peaks stay below
    flags = flag_windows(scores, cutoff)
    assert [index for index, flag in enumerate(flags) if flag] == [9 * 48 + 20]


def test_a_series_whose_days_all_peak_alike_gets_no_flag() -> None:
    # Given eight days of identical scores
    scores = [1.5] * (8 * 48)

    # When the cut-off is computed
    cutoff = score_cutoff(half_hours(len(scores)), scores)

    # Then it lies above every score, nothing is flagged and the relative scores are all 0
    assert cutoff.block_spread == 0
    assert cutoff.value > 1.5
    assert not any(flag_windows(scores, cutoff))
    assert set(relative_scores(scores, cutoff)) == {0.0}
    assert "no window stands out" in cutoff.describe()


def test_when_most_days_share_one_peak_the_mean_deviation_still_finds_the_odd_one() -> None:
    # Given eight days peaking at exactly 2.0 (MAD = 0) and one at 6.0
    scores = daily_peaks([2.0] * 8 + [6.0])

    # When the cut-off is computed with 3 spreads
    cutoff = score_cutoff(half_hours(len(scores)), scores, spreads=3.0)

    # Then the spread is the mean absolute deviation 4/9, and only the 6.0 window is flagged
    assert cutoff.block_spread == pytest.approx(4 / 9)
    assert cutoff.value == pytest.approx(2.0 + 3 * 4 / 9)
    assert sum(flag_windows(scores, cutoff)) == 1


def test_a_series_shorter_than_a_week_is_split_into_seven_blocks() -> None:
    # Given two days of half hours
    starts = half_hours(96)

    # When the cut-off is computed
    cutoff = score_cutoff(starts, [1.0 + (index % 7) / 10 for index in range(96)])

    # Then the blocks are a seventh of the span each
    assert cutoff.block_seconds == pytest.approx(96 * 1800 / 7)
    assert cutoff.blocks == 7


def test_relative_scores_are_one_half_at_the_cutoff_and_rise_with_the_score() -> None:
    scores = daily_peaks([2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0])
    cutoff = score_cutoff(half_hours(len(scores)), scores, spreads=3.0)

    relative = relative_scores([cutoff.value, cutoff.value + cutoff.block_spread, 1.0, 9.0], cutoff)

    assert relative[0] == pytest.approx(0.5)
    assert relative[1] == pytest.approx(1 / (1 + math.exp(-1)))
    assert relative[2] < 0.01 < 0.99 < relative[3]


@pytest.mark.parametrize(
    ("window_starts", "scores", "message"),
    [
        (half_hours(2), [1.0], "2 window starts for 1 scores"),
        ([], [], "at least one window"),
        ([START + HALF_HOUR, START], [1.0, 2.0], "in time order"),
        (half_hours(2), [1.0, math.nan], "finite"),
    ],
)
def test_cutoff_rejects_inputs_it_cannot_use(window_starts: list[datetime], scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score_cutoff(window_starts, scores)


def test_consecutive_flags_merge_into_one_event_with_totals_and_peak() -> None:
    # Given windows 2..4 flagged, their scores peaking at window 3
    starts = half_hours(8)
    observed = [100, 100, 40, 30, 50, 100, 100, 100]
    expected = [100, 100, 90, 95, 100, 100, 100, 100]
    scores = [1.0, 1.0, 3.0, 5.0, 4.0, 1.0, 1.0, 1.0]
    flags = [False, False, True, True, True, False, False, False]

    # When the events are merged
    (event,) = merge_events(starts, observed, expected, scores, flags)

    # Then one event spans 01:00 (window 2) to the end of window 4 (02:30)
    assert event == AnomalyEvent(
        event_id=1,
        start=starts[2],
        end=starts[4] + HALF_HOUR,
        first_index=2,
        last_index=4,
        windows=3,
        peak_window=starts[3],
        peak_score=5.0,
        observed=120.0,
        expected=285.0,
        peak_observed=30.0,
        peak_expected=95.0,
    )
    assert event.direction == "below"
    assert event.change == pytest.approx(120 / 285 - 1)
    assert event.contains(starts[4]) and not event.contains(starts[5])
    assert event.as_dict()["start"] == "2025-03-03T01:00:00+00:00"


@pytest.mark.parametrize(
    ("flags", "expected_spans"),
    [
        ("..X.X...", [(2, 4)]),  # one ordinary window between two flagged ones is bridged
        ("..X..X..", [(2, 2), (5, 5)]),  # two are not
        ("X......X", [(0, 0), (7, 7)]),
        ("........", []),
    ],
)
def test_gaps_of_one_window_are_bridged_and_longer_ones_split(
    flags: str, expected_spans: list[tuple[int, int]]
) -> None:
    starts = half_hours(len(flags))
    values = [1.0] * len(flags)

    events = merge_events(starts, values, values, values, [flag == "X" for flag in flags])

    assert [(event.first_index, event.last_index) for event in events] == expected_spans
    assert [event.event_id for event in events] == list(range(1, len(expected_spans) + 1))


def test_the_earliest_window_is_the_peak_when_scores_tie() -> None:
    starts = half_hours(3)
    (event,) = merge_events(starts, [1, 1, 1], [1, 1, 1], [2.0, 2.0, 1.0], [True, True, True])
    assert event.peak_window == starts[0]


def test_merge_events_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="one value per window"):
        merge_events(half_hours(3), [1, 1], [1, 1, 1], [1, 1, 1], [True, True, True])


def test_evaluate_windows_flags_windows_and_merges_them_with_their_bridged_neighbour() -> None:
    # Given nine ordinary days and a tenth with two high windows one half hour apart
    scores = daily_peaks([2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0])
    scores[9 * 48 + 22] = 8.0
    starts = half_hours(len(scores))
    observed = [100.0] * len(scores)
    expected = [100.0] * len(scores)
    observed[9 * 48 + 20] = 300.0

    # When the run is evaluated with 3 spreads
    evaluation = evaluate_windows(starts, observed, expected, scores, spreads=3.0)

    # Then windows 20 and 22 of day 10 are anomalous, and with window 21 between them they are one event
    first = 9 * 48 + 20
    anomalous = [index for index, is_anomaly in enumerate(evaluation.is_anomaly) if is_anomaly]
    assert anomalous == [first, first + 2]
    assert evaluation.event_ids[first : first + 3] == (1, 1, 1)
    assert evaluation.event_ids[first - 1] is None and evaluation.event_ids[first + 3] is None
    (event,) = evaluation.events
    assert (event.peak_window, event.peak_score, event.observed, event.expected) == (starts[first], 9.0, 500.0, 300.0)
    assert evaluation.relative_scores[first] > 0.5 > evaluation.relative_scores[0]


def test_an_event_takes_in_the_elevated_windows_around_its_flags_but_elevated_windows_alone_make_none() -> None:
    # Given ten days (peaks 2.0 .. 2.8 and a last day at 9.0), where the 9.0 window has two neighbours at 2.9
    # on either side, and the same day has a lone 2.9 twenty windows later
    scores = daily_peaks([2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0])
    peak = 9 * 48 + 20
    for index in (peak - 2, peak - 1, peak + 1, peak + 2):
        scores[index] = 2.9
    scores[peak + 20] = 2.9
    starts = half_hours(len(scores))
    ones = [1.0] * len(scores)

    # When evaluated with 3 spreads for the cut-off and 1 for the extension (2.45 + 0.37 = 2.82)
    evaluation = evaluate_windows(starts, ones, ones, scores, spreads=3.0, extend_spreads=1.0)

    # Then only the 9.0 window is anomalous, its event spans the four 2.9 windows around it, and the lone
    # 2.9 belongs to no event
    assert [index for index, flag in enumerate(evaluation.is_anomaly) if flag] == [peak]
    (event,) = evaluation.events
    assert (event.first_index, event.last_index) == (peak - 2, peak + 2)
    assert evaluation.event_ids[peak + 20] is None
    assert evaluation.cutoff.extend_value == pytest.approx(2.45 + 1.4826 * 0.25)


def joined_line(window_start: str, passengers: object, expected: object, score: object) -> str:
    record = {"window_start": window_start, "passengers": passengers, "expected": expected}
    return json.dumps(record | {"SageMakerOutput": {"score": score}})


def test_transform_output_lines_become_scored_windows_in_time_order() -> None:
    lines = [
        joined_line("2025-03-03 00:30:00", 12, 10.5, 1.25),
        "",
        joined_line("2025-03-03 00:00:00", 7, 8.0, 0.5),
    ]

    scored = read_transform_output(lines)

    assert scored.window_starts == (START, START + HALF_HOUR)
    assert (scored.observed, scored.expected, scored.scores) == ((7.0, 12.0), (8.0, 10.5), (0.5, 1.25))
    assert len(scored) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1 is not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"window_start": "2025-03-03 00:00:00", "passengers": 1, "expected": 1}), "SageMakerOutput"),
        (joined_line("03/03/2025", 1, 1, 1.0), "is not yyyy-MM-dd HH:mm:ss"),
        (joined_line("2025-03-03 00:00:00", "12", 1, 1.0), "'passengers' must be a finite number"),
        (joined_line("2025-03-03 00:00:00", 1, 1, None), "SageMakerOutput: 'score' must be a finite number"),
    ],
)
def test_transform_output_that_is_not_a_scored_window_is_refused_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(TransformOutputError, match=message):
        read_transform_output([line], source="part-0.json.out")


def test_a_window_scored_twice_is_refused() -> None:
    line = joined_line("2025-03-03 00:00:00", 1, 1, 1.0)
    with pytest.raises(TransformOutputError, match="appears twice"):
        read_transform_output([line, line])


def test_the_cutoff_never_flags_more_than_its_share_of_windows() -> None:
    # Given ten days whose every window scores 1.0 except a spiky day with 40 windows at 9.0..9.39
    scores = daily_peaks([2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0])
    for index in range(40):
        scores[9 * 48 + index] = 9.0 + index / 100

    # When the cut-off may flag at most 1 % of the 480 windows, with no limit on the share cap
    cutoff = score_cutoff(half_hours(len(scores)), scores, spreads=3.0, max_share=0.01, cap_limit=math.inf)

    # Then the share cap sets it, and at most 5 windows (1 % of 480, rounded up) are at or above it
    assert cutoff.capped
    assert not cutoff.limited
    assert 1 <= sum(flag_windows(scores, cutoff)) <= 5
    assert "top 1%" in cutoff.describe()


def test_the_share_cap_raises_the_cutoff_at_most_to_its_limit() -> None:
    # Given the spiky day of 40 windows at 9.0..9.39 above daily peaks of 2.0..2.8 (typical 2.45, spread 0.37)
    scores = daily_peaks([2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 9.0])
    for index in range(40):
        scores[9 * 48 + index] = 9.0 + index / 100

    # When the share cap may raise the cut-off to at most 2 x the 3 spreads
    cutoff = score_cutoff(half_hours(len(scores)), scores, spreads=3.0, max_share=0.01, cap_limit=2.0)

    # Then the cut-off is typical + 6 spreads, and every window of the spiky day is flagged
    assert cutoff.capped and cutoff.limited
    assert cutoff.value == pytest.approx(2.45 + 6 * 1.4826 * 0.25)
    assert sum(flag_windows(scores, cutoff)) == 40
    assert "anomalous" in cutoff.describe()


@pytest.mark.parametrize(("days", "spreads"), [(14, 0.9 * math.log(14)), (31, 0.9 * math.log(31))])
def test_by_default_the_spreads_grow_with_the_log_of_the_number_of_blocks(days: int, spreads: float) -> None:
    # Given days peaking at 2.0..2.9 in turn
    scores = daily_peaks([2.0 + (day % 10) / 10 for day in range(days)])

    # When the cut-off is computed with the default spreads
    cutoff = score_cutoff(half_hours(len(scores)), scores)

    # Then the spreads are 0.9 x ln(days): 2.38 for two weeks, 3.09 for a month
    assert cutoff.blocks == days
    assert cutoff.spreads == pytest.approx(spreads)
    assert cutoff.value == pytest.approx(cutoff.typical_block_max + spreads * cutoff.block_spread)


def test_repeated_window_starts_are_allowed_but_not_a_step_back_in_time() -> None:
    starts = [START, START + HALF_HOUR, START + HALF_HOUR, START + 2 * HALF_HOUR]
    assert score_cutoff(starts, [1.0, 2.0, 3.0, 4.0]).blocks >= 1
    with pytest.raises(ValueError, match="in time order"):
        score_cutoff([START + HALF_HOUR, START], [1.0, 2.0])
