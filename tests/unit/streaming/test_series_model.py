"""The per-series model on small synthetic series: cycles, heavy tails, scale, changes, gaps, state, decisions."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from anomaly_detector.series_model import (
    DEFAULT_MODEL,
    ModelParams,
    SeriesResult,
    SeriesState,
    decide_alerts,
    update,
)

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
FIVE_MINUTES = timedelta(minutes=5)
HOUR = timedelta(hours=1)
THRESHOLD = 48.0


def replay(
    values: Sequence[float],
    step: timedelta = FIVE_MINUTES,
    start: datetime = T0,
    threshold: float = THRESHOLD,
    params: ModelParams = DEFAULT_MODEL,
) -> tuple[list[SeriesResult], SeriesState]:
    state: SeriesState | None = None
    results = []
    for index, value in enumerate(values):
        result, state = update(state, start + index * step, value, threshold, params)
        results.append(result)
    assert state is not None
    return results, state


def alerts(results: Sequence[SeriesResult]) -> list[int]:
    return [index for index, result in enumerate(results) if result.is_anomaly]


def noisy(length: int, seed: int, level: float = 100.0, sigma: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, sigma) for _ in range(length)]


def daily_cycle(length: int, seed: int, per_day: int = 288) -> list[float]:
    """Quiet nights, busy evenings (x0.25 .. x1.75 of 1000), 3 % noise."""
    rng = random.Random(seed)
    return [
        1000 * (1 - 0.75 * math.cos(2 * math.pi * (i % per_day) / per_day)) * rng.lognormvariate(0, 0.03)
        for i in range(length)
    ]


def test_the_state_passed_in_is_not_modified_and_its_document_round_trips() -> None:
    # Given a state after two days of a daily cycle
    _, state = replay(daily_cycle(600, seed=1))
    document = json.dumps(state.to_dict())

    # When one more value is judged, from the state and from its JSON document
    first, after = update(state, T0 + 600 * FIVE_MINUTES, 900.0, THRESHOLD)
    second, after_again = update(SeriesState.from_dict(json.loads(document)), T0 + 600 * FIVE_MINUTES, 900.0, THRESHOLD)

    # Then the input is unchanged, and both give the same verdict and the same next state
    assert json.dumps(state.to_dict()) == document
    assert first == second
    assert after.to_dict() == after_again.to_dict()


def spiky_then_zigzag(days_before: int, seed: int) -> tuple[list[float], int]:
    """A steady 100 (noise 0.5) with a +15 spike every 4 hours, then the same level zigzagging by +-3."""
    rng = random.Random(seed)
    steady = days_before * 288
    values = [100 + rng.gauss(0, 0.5) + (15.0 if index % 48 == 7 else 0.0) for index in range(steady)]
    values += [100 + (3.0 if index % 2 else -3.0) + rng.gauss(0, 0.5) for index in range(72)]
    return values, steady


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_steady_series_that_starts_to_zigzag_is_found_by_its_volatility(seed: int) -> None:
    # Given four days of a steady series whose spikes (ordinary from the third day) are larger than the
    # zigzag that follows
    values, onset = spiky_then_zigzag(4, seed)

    # When it is replayed
    results, _ = replay(values)

    # Then the spikes of the last two days raise nothing, and the zigzag opens an anomaly within its
    # first two hours, on the volatility evidence
    assert [index for index in alerts(results) if onset - 2 * 288 <= index < onset] == []
    found = [index for index in alerts(results) if index >= onset]
    assert found and found[0] < onset + 24
    assert results[found[0]].evidence == "volatility"


def test_without_the_volatility_evidence_the_zigzag_looks_ordinary() -> None:
    # Given the same series and a model without volatility evidence (what the point and shift looks see)
    values, onset = spiky_then_zigzag(4, seed=1)
    params = dataclasses.replace(DEFAULT_MODEL, vol_window=0)
    state: SeriesState | None = None
    found = []
    for index, value in enumerate(values):
        result, state = update(state, T0 + index * FIVE_MINUTES, value, THRESHOLD, params)
        found += [index] if result.is_anomaly else []

    # Then nothing after the first two days is found: each zigzag value is nearer than the usual spike,
    # and their mean is the level
    assert [index for index in found if index >= onset - 2 * 288] == []


def test_a_damaged_or_foreign_document_is_refused() -> None:
    _, state = replay(noisy(50, seed=2))
    document = state.to_dict()
    with pytest.raises(ValueError, match="format"):
        SeriesState.from_dict({**document, "f": 99})
    with pytest.raises(ValueError, match="damaged"):
        SeriesState.from_dict({key: value for key, value in document.items() if key != "day"})


def test_the_first_values_are_learnt_but_not_judged() -> None:
    results, _ = replay([*noisy(DEFAULT_MODEL.warmup_points, seed=3), 10_000.0])
    assert {r.status for r in results[:-1]} == {"warming_up"}
    assert all(r.severity == 0 and not r.is_anomaly for r in results[:-1])
    assert results[-1].status == "scored" and results[-1].is_anomaly


@pytest.mark.parametrize(
    "transform",
    [lambda v: v, lambda v: v * 1e6, lambda v: v * 1e-4, lambda v: (v - 100.0) * 0.5 - 3.0],
    ids=["as is", "millions", "fractions", "signed around zero"],
)
def test_a_spike_and_a_dip_are_found_whatever_the_scale_and_sign(transform: Callable[[float], float]) -> None:
    # Given noisy values around 100 (or the same scaled, or shifted to around zero) with a spike and a dip
    values = noisy(800, seed=4)
    values[400] += 30.0
    values[600] -= 30.0

    # When replayed
    results, _ = replay([transform(v) for v in values])

    # Then the spike and the dip open anomalies, high and low, and noise at most a couple (see the next test)
    found = alerts(results)
    assert {400, 600} <= set(found) and len(found) <= 4
    assert (results[400].direction, results[600].direction) == ("high", "low")
    assert results[400].expected_low < transform(100.0) < results[400].expected_high


def test_noise_alone_raises_almost_no_alerts_even_with_heavy_tails() -> None:
    # Given 3,000 values of Gaussian noise and 3,000 of heavy-tailed noise (Student t, 3 degrees of freedom)
    rng = random.Random(5)
    gaussian = [100 + rng.gauss(0, 2) for _ in range(3000)]
    heavy = [100 + rng.gauss(0, 2) / math.sqrt(sum(rng.gauss(0, 1) ** 2 for _ in range(3)) / 3) for _ in range(3000)]

    # When replayed
    gaussian_alerts = alerts(replay(gaussian)[0])
    heavy_alerts = alerts(replay(heavy)[0])

    # Then few intervals in ten days open an anomaly. The default threshold is tuned for sensitivity: pure
    # Gaussian noise opens about one per thousand intervals, noise this heavy-tailed about one per 300.
    assert len(gaussian_alerts) <= 5
    assert len(heavy_alerts) <= 12


def test_a_daily_cycle_is_learnt_and_a_missing_evening_stands_out() -> None:
    # Given four days of a daily cycle, and on the fifth the busy evening stays at night level for an hour
    values = daily_cycle(5 * 288, seed=6)
    evening = 4 * 288 + 144  # the daily peak
    for index in range(evening, evening + 12):
        values[index] = 260.0

    # When replayed
    results, _ = replay(values)

    # Then the daily forecaster is in use, the missing evening opens an anomaly at once, and nothing else does
    assert results[evening - 1].forecaster == "daily"
    assert alerts(results[3 * 288 :]) == [evening - 3 * 288]
    assert results[evening].direction == "low"
    # And the same value at night is ordinary
    assert results[4 * 288 + 5].severity < THRESHOLD


@pytest.mark.parametrize("seed", [1, 3])
def test_a_day_that_stays_at_night_level_is_found_as_the_daily_cycle_is_kept(seed: int) -> None:
    # Given five days of a daily cycle, then a dead day: from midnight the series stays at its night level
    # for 20 hours (its flat start looks like any night, and the recent level forecasts a flat line better
    # than the daily profile while it lasts)
    values = daily_cycle(7 * 288, seed=seed)
    dead = 5 * 288
    for index in range(dead, dead + 240):
        values[index] = 250.0

    # When replayed
    results, _ = replay(values)

    # Then the daily forecaster stays in use through the dead day, and the missing day opens an anomaly
    assert all(results[index].forecaster == "daily" for index in range(dead, dead + 241))
    found = [index for index in alerts(results) if index >= 3 * 288]
    assert found and dead <= found[0] < dead + 240
    assert results[found[0]].direction == "low"


def test_a_weekly_cycle_is_learnt_and_a_weekday_that_looks_like_a_sunday_stands_out() -> None:
    # Given ten weeks of hourly values: busy weekdays, quiet weekends, each with a daily shape, 3 % noise
    # (the errors of the first weeks, before the weekly cycle was known, weigh on the error histogram for
    # about six weeks of hourly values)
    rng = random.Random(7)

    def expected(moment: datetime) -> float:
        weekday_factor = 1.0 if moment.weekday() < 5 else 0.35
        return 1000 * weekday_factor * (1.2 - 0.4 * math.cos(2 * math.pi * moment.hour / 24))

    moments = [T0 + index * HOUR for index in range(10 * 7 * 24)]
    values = [expected(moment) * rng.lognormvariate(0, 0.03) for moment in moments]
    # And the Wednesday of the tenth week (a holiday) looks like a Sunday
    holiday = 9 * 7 * 24 + 2 * 24
    for index in range(holiday, holiday + 24):
        values[index] = expected(moments[index] - timedelta(days=3)) * rng.lognormvariate(0, 0.03)

    # When replayed
    results, _ = replay(values, step=HOUR)

    # Then the weekly forecaster is in use, the holiday opens an anomaly that day, and the real weekend
    # before it did not
    assert results[holiday].forecaster == "weekly"
    later_alerts = [index for index in alerts(results) if index >= holiday - 4 * 24]
    assert later_alerts and holiday <= later_alerts[0] < holiday + 24
    assert all(not results[index].is_anomaly for index in range(holiday - 72, holiday))


def test_a_nightly_spike_becomes_normal_but_a_much_bigger_one_is_not() -> None:
    # Given quiet values with a x10 spike every night at about 03:00 (a batch job) for eight days
    rng = random.Random(8)
    values = noisy(8 * 288, seed=8, level=10.0, sigma=0.3)
    nights = []
    for day in range(8):
        index = day * 288 + 36 + rng.randint(-3, 3)
        values[index] = 100.0
        nights.append(index)
    # And on the eighth night the job's spike is five times its usual size
    values[nights[-1]] = 500.0

    # When replayed
    results, _ = replay(values)

    # Then after the first days the usual spikes open no anomaly, and the big one does
    assert [index for index in alerts(results) if index >= 4 * 288] == [nights[-1]]


def nightly_job_then(days: int, seed: int, extra_at: int | None, extra: float = 40.0) -> list[float]:
    """Quiet values around 10 with the job's x10 spike every night at about 03:00; ``extra`` at one index."""
    rng = random.Random(seed)
    values = noisy(days * 288, seed=seed, level=10.0, sigma=0.3)
    for day in range(days):
        values[day * 288 + 36 + rng.randint(-3, 3)] = 100.0
    if extra_at is not None:
        values[extra_at] = extra
    return values


AFTERNOON_OF_DAY_9 = 8 * 288 + 207  # 17:15


@pytest.mark.parametrize("seed", [8, 11, 12])
def test_a_nightly_job_does_not_make_a_smaller_spike_ordinary_at_any_hour(seed: int) -> None:
    # Given eight days of a nightly job's x10 spike at about 03:00, and on the ninth afternoon a x4 spike
    values = nightly_job_then(10, seed, AFTERNOON_OF_DAY_9)

    # When replayed
    results, _ = replay(values)

    # Then the afternoon spike opens an anomaly (most days reach x10, but only at the job's hours), and the
    # job's own spikes stay ordinary
    assert [index for index in alerts(results) if index >= 4 * 288] == [AFTERNOON_OF_DAY_9]
    # And without the recurring-peak rule every day's maximum guards every hour: the spike looks ordinary
    without, _ = replay(values, params=dataclasses.replace(DEFAULT_MODEL, peak_window_hours=0))
    assert without[AFTERNOON_OF_DAY_9].severity < THRESHOLD


def test_at_the_jobs_own_hours_a_spike_no_larger_than_the_job_stays_ordinary() -> None:
    # Given the same nightly job, and on the ninth night a x4 spike an hour after the job
    values = nightly_job_then(10, 8, 8 * 288 + 48)

    results, _ = replay(values)

    assert [index for index in alerts(results) if index >= 4 * 288] == []


def test_spikes_at_random_hours_keep_guarding_every_hour() -> None:
    # Given a x10 spike every day at a random hour (no recurring peak), and on the ninth afternoon a x4 spike
    rng = random.Random(5)
    values = noisy(10 * 288, seed=5, level=10.0, sigma=0.3)
    for day in range(10):
        values[day * 288 + rng.randrange(288)] = 100.0
    values[AFTERNOON_OF_DAY_9] = 40.0

    results, _ = replay(values)

    # Then the x4 spike is what most days exceed: ordinary, as before the rule
    assert results[AFTERNOON_OF_DAY_9].severity < THRESHOLD


def test_a_state_written_before_the_hourly_point_maxima_still_loads_and_judges() -> None:
    # Given the nightly job up to the ninth afternoon, and the state's document without its hourly point maxima
    _, state = replay(nightly_job_then(10, 8, None)[:AFTERNOON_OF_DAY_9])
    document = state.to_dict()
    older = {key: value for key, value in document.items() if key != "hpoint"}

    # When the afternoon spike is judged from the full document and from the older one
    moment = T0 + AFTERNOON_OF_DAY_9 * FIVE_MINUTES
    full, _ = update(SeriesState.from_dict(json.loads(json.dumps(document))), moment, 40.0, THRESHOLD)
    old, after_old = update(SeriesState.from_dict(older), moment, 40.0, THRESHOLD)

    # Then the full state knows the job's hours; the older one judges as before the rule (every day's maximum)
    assert full.severity >= THRESHOLD
    assert old.status == "scored" and old.severity < THRESHOLD
    assert "hpoint" in after_old.to_dict()


def test_a_lasting_level_shift_is_announced_once_and_then_accepted() -> None:
    values = noisy(1200, seed=9)
    values[600:] = [value + 40.0 for value in values[600:]]
    results, _ = replay(values)
    assert [index for index in alerts(results) if index >= 500] == [600]
    assert max(r.severity for r in results[650:]) < THRESHOLD


def test_the_mean_shift_reported_is_the_last_values_distance_from_the_usual_level() -> None:
    # Given a steady series around 100 that steps up by 40
    values = noisy(600, seed=9)
    values[500:] = [value + 40.0 for value in values[500:]]

    results, _ = replay(values)

    # Then before the step the mean shift is noise; it grows by about 40/6 a value, to about 40 after 6 values
    assert all(abs(r.mean_shift) < 5.0 for r in results[400:500])
    for k in (1, 3, 6):
        assert results[499 + k].mean_shift == pytest.approx(40.0 * k / 6, abs=2.5)


def test_a_gap_in_the_data_is_not_an_anomaly_by_itself() -> None:
    # Given a day and a half of a daily cycle, six hours without data, then the cycle goes on
    values = daily_cycle(3 * 288, seed=10)
    moments = [T0 + index * FIVE_MINUTES for index in range(len(values))]
    kept = [
        (moment, value)
        for index, (moment, value) in enumerate(zip(moments, values, strict=True))
        if not 420 <= index < 492
    ]
    state: SeriesState | None = None
    opened = []
    for moment, value in kept:
        result, state = update(state, moment, value, THRESHOLD)
        opened.append(result.is_anomaly)

    # Then nothing opens an anomaly
    assert not any(opened)


def test_time_must_not_go_back_and_values_must_be_numbers() -> None:
    result, state = update(None, T0, 1.0, THRESHOLD)
    _, state = update(state, T0, 2.0, THRESHOLD)  # a repeated timestamp is just another value
    with pytest.raises(ValueError, match="go back"):
        update(state, T0 - FIVE_MINUTES, 1.0, THRESHOLD)
    with pytest.raises(ValueError, match="finite"):
        update(state, T0 + FIVE_MINUTES, math.nan, THRESHOLD)
    assert result.status == "warming_up"


@pytest.mark.parametrize("threshold", [20.0, 48.0, 75.0])
def test_decide_alerts_makes_the_decisions_update_makes(threshold: float) -> None:
    # Given a series with spikes, a shift and a burst, replayed at the threshold
    values = noisy(1500, seed=11)
    for index in (300, 301, 302, 700, 900, 930, 960):
        values[index] += 25.0
    values[1100:] = [value + 15 for value in values[1100:]]
    results, _ = replay(values, threshold=threshold)

    # When the decision rule is applied to the severities alone
    decisions = decide_alerts([r.severity for r in results], threshold)

    # Then it decides exactly as the model did
    assert decisions == [r.is_anomaly for r in results]


def test_the_state_stays_small_however_long_the_series() -> None:
    _, state = replay(daily_cycle(12 * 288, seed=12))
    document = json.dumps(state.to_dict())
    assert len(state.daily) == 288 and len(state.weekly) == 168
    assert len(document) < 12_000


@pytest.mark.parametrize(
    "series",
    [lambda: noisy(5 * 288, seed=11, level=1000.0, sigma=20.0), lambda: daily_cycle(5 * 288, seed=12)],
    ids=["flat", "daily"],
)
def test_the_return_to_normal_after_a_one_hour_drop_is_not_an_anomaly(series: Callable[[], list[float]]) -> None:
    # Given four and a half days of a series, then the values drop by 30 % for one hour (12 intervals)
    values = series()
    drop = 4 * 288 + 144
    for index in range(drop, drop + 12):
        values[index] *= 0.7

    # When replayed
    results, _ = replay(values)

    # Then the drop opens an anomaly, low, within its first intervals
    opened = alerts(results[drop - 12 : drop + 12])
    assert len(opened) == 1 and 12 <= opened[0] < 15
    assert results[drop - 12 + opened[0]].direction == "low"
    # And the return to the usual level (the recent level had followed the drop) is not judged high
    after = results[drop + 12 : drop + 36]
    assert all(r.severity < THRESHOLD for r in after if r.direction == "high"), [
        (i, round(r.severity), r.evidence) for i, r in enumerate(after) if r.direction == "high"
    ]
    assert not any(r.is_anomaly for r in after)


def test_a_nightly_job_at_its_usual_hour_is_ordinary_from_its_third_day_but_not_at_another_hour() -> None:
    # Given a quiet series with a nightly job: one spike a day around 09:00, drifting by a few minutes
    per_day = 288
    values = noisy(7 * per_day, seed=5)
    rng = random.Random(6)
    spikes = [day * per_day + 108 + rng.randint(-3, 3) for day in range(7)]
    for index in spikes:
        values[index] = 400.0 + rng.gauss(0, 20)
    # ... and, on the last day, a larger spike in the evening, when the job never runs
    off_hour = 6 * per_day + 250
    values[off_hour] = 800.0

    # When the series is replayed
    results, _ = replay(values)

    # Then the job is not alerted from its third day on (neither its spike nor its echo in the shift
    # evidence), and the evening spike is
    found = alerts(results)
    assert [index for index in found if index >= spikes[2] - 1 and index != off_hour] == []
    assert off_hour in found
