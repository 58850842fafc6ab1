"""One series' anomaly model: the pure core of the streaming detector.

API (no I/O, no clock, no globals)::

    result, new_state = update(state, timestamp, value, threshold)   # state None for a new series

``state`` is a :class:`SeriesState` (never modified: a new one is returned); ``to_dict``/``from_dict``
turn it into a small JSON-able document. ``result`` is a :class:`SeriesResult`: the *severity* (0-100) of
the value, the detector's decision (``is_anomaly``), the expected value and range, and why. The same
function serves the detector Lambda (one call per dimension value and interval), the backtest (one call
per row) and anyone who scores many series (one state per series key).

How a value is judged
---------------------
1. **Expected value.** Three forecasters run side by side: the recent level (median of the last
   ``level_window`` values), the recent level plus a *daily profile* (time-of-day bins), and plus a
   *weekly correction* (hour-of-week bins). The one with the lowest recent mean absolute error is used,
   a more complex one only when it is ``selection_margin`` better, so flat series stay simple and a
   daily/weekly cycle is used where a series has one (it needs two days / two weeks to be learnt; the
   first day's bins hold raw means, turned into offsets from that day's mean once it is complete).
   A cycle that has been in use for ``switch_after_days`` is dropped for a simpler forecaster only once
   that one has been preferred for ``switch_days`` in a row (more than a day, so every time of day has
   had its say): an anomaly of a few hours to a day (a flat spell, a missed peak) makes the recent level
   look better while it lasts, and without the hold the recent level would be in use when the cycle
   comes back, flagging the cycle's own first rise. A cycle that is gone for good is dropped after it.
   Profiles learn from values clipped to ``clip_sigmas`` robust standard deviations of the usual error,
   so an anomaly barely moves them. A *slow baseline* (the level over ``slow_memory_days``, plus the
   same profile) is kept as well.
2. **Two kinds of evidence**, in the series' own units (so any scale and sign work):
   - *point*: the distance of the value from the expected value (spikes, dips, a sudden jump);
   - *shift*: the mean distance of the last ``shift_window`` values from the slow baseline (a change of
     level or of the daily shape that lasts, density changes of spikes).
3. **How unusual is that distance for this series?** Each kind keeps a decaying histogram of its past
   distances (log-spaced buckets, memory about ``tail_memory`` values: heavy tails and a series' usual
   spikes are learnt, not assumed). While the recent level is the forecaster in use and it is more than
   ``lag_sigmas`` usual errors away from the slow baseline, the point distance *learnt* is the one from
   the nearer of the two: the median of a few values lags a swing or a burst, and those errors of its own
   would widen the learnt tail and hide later anomalies. (On steady noise the two agree, and nothing
   changes.) The distance *judged* is always the one from the forecast (the nearer of two forecasts
   understates an anomaly whenever the other one is wrong in the same direction), and with a daily or
   weekly cycle the forecast's own distance is learnt. Where the histogram has at least ``tail_trust``
   values at or beyond the distance, the probability is read from it; further out, the tail is extended
   as a power law of exponent ``tail_exponent`` from the last trusted point, so one or two past extremes
   do not hide a new one. The point evidence is also checked against the series' *daily maxima* of the last
   ``guard_days`` days (once there are ``guard_min_days``): a value no larger than what most days reach
   (a nightly batch job's spike) is not rare, however rare per interval. Where the days have a *recurring
   peak* (on at least ``peak_share`` of the last ``tod_days`` days, and three, the largest distance stands
   out within ``peak_window_hours`` of the same clock hour; kept per clock hour in a ring like the shift's),
   the guard away from the peak's hours uses each day's maximum outside them instead: the job's spike stays
   ordinary at its hour without making a spike of its size ordinary at every hour. The shift evidence has a guard
   of its own that knows the time of day: each clock hour's largest shift distance is kept for
   ``tod_days`` days, and a shift distance no larger than ``tod_shift_margin`` times what the same time
   of day (within ``tod_window_hours``, as jobs drift) reached on most earlier days (their median, once
   there are ``guard_min_days``) is not rare either. So the echo of a recurring job's spike in the shift
   evidence (one spike lifts the mean of ``shift_window`` values) is ordinary from its third day, while
   the same shift at an hour where it never happens is still judged by the shift tail.
   A third kind, *volatility*, sees a change in how the series moves rather than where it is (a flat
   series that starts to zigzag): the median, over the last ``vol_window`` successive changes, of their
   distance from their own median. A spike or a step touches only one or two of those changes and a
   smooth daily rise or fall shifts them all alike, so only a lasting zigzag moves it. It has its own
   decaying histogram (the same mechanism; beyond the trusted part a heavier power law, exponent
   ``vol_exponent``, as a zigzag gives a run of similar distances) and a time-of-day guard like the
   shift's (``vol_tod_margin``, its own ring of hourly maxima), so a zigzag at the hour it happens on
   most days is ordinary.
4. **Severity** = ``severity_per_decade`` x (-log10 p), capped at 100, where p is the smallest of: the
   point and shift probabilities times two, and the volatility probability times ``vol_factor`` (three
   looks; volatility, the newest and least tested, is given the full three). 25 points per factor of
   ten: severity 50 is "1 in ~200", 75 "1 in ~2,000", 100 "1 in 20,000 or rarer".
5. **Decision.** An interval at or above the threshold *opens an anomaly* (``is_anomaly``) unless one is
   already open for the series: an open anomaly stays open while the severity stays at or above
   ``episode_clear_fraction`` of the threshold, and closes after ``episode_quiet_points`` intervals
   below it (and at least ``episode_min_points`` after it opened). So a lasting anomaly is announced
   once, not every interval (``ongoing`` marks the intervals of an open anomaly).

Changes: a level that stays away from the slow baseline for ``rebase_points`` values is accepted as the
new normal (the baseline jumps to the recent level); the recent-level forecaster follows a change by
itself after half its window. So that the return to normal after a lasting drop or rise is not news, the
recent level at the first unusual value of a run (surprise at least ``rebase_surprise``) is kept as the
*level before*, for ``return_memory_days`` after the run's last unusual value: a value back within
``return_sigmas`` usual errors of it (plus the current profile), and closer to it than to the forecast,
is judged against it. The model still learns the distances of point 3, and none of this depends on the
threshold (``decide_alerts`` stays exact).
After a gap longer than ``level_window`` intervals the recent values are
dropped, and the next ``rewarm_points`` values rebuild them and are learnt, not judged.

The first ``warmup_points`` values are learnt from but not judged (status ``warming_up``).

State size (bounded, independent of how long the series runs): about 60 numbers, the daily profile
(at most ``max_bins_per_day`` bins, 288 for 5-minute data) and weekly correction (at most
``weekly_bins``, 168), two histograms of at most ``max_buckets`` buckets each (typically 40-120 in use),
``guard_days`` daily maxima, and the hourly shift and point maxima (``24 * tod_days + tod_window_hours + 1``
slots each, 170, kept as two-byte histogram buckets), and three counters for the forecaster in use (which,
for how long, and how long a simpler one has been preferred). As JSON (``to_dict``, lossless float64),
about 10.8 KB per series for 5-minute data, less for hourly (the volatility evidence's histogram, its
``vol_window`` + 1 last values and its ring of hourly maxima included). A state read back judges exactly
as the one written.
"""

from __future__ import annotations

import binascii
import math
import statistics
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY
STATE_FORMAT = 5  # of SeriesState.to_dict; bump when the meaning of a field changes
_ZERO_BUCKET = -32768  # histogram bucket of exact zeros
_NO_VALUE = -32767  # an hour without a judged value (HourlyMaxima)
_LN_LN_2 = math.log(math.log(2.0))
_GUMBEL_MAD = 0.767  # median absolute deviation of a standard Gumbel variable
_NONE, _DAILY, _WEEKLY = 0, 1, 2
FORECASTERS = ("level", "daily", "weekly")


@dataclass(frozen=True)
class ModelParams:
    """Model constants. One default for every series; see the module docstring for what each does."""

    warmup_points: int = 100
    level_window: int = 12
    shift_window: int = 6
    slow_memory_days: float = 2.0
    profile_rate: float = 0.25
    clip_sigmas: float = 4.0
    selection_rate: float = 0.01
    selection_margin: float = 0.9
    switch_days: float = 1.25
    switch_after_days: float = 2.0
    tail_memory: float = 1000.0
    tail_trust: float = 8.0
    tail_exponent: float = 5.0
    bucket_ratio: float = 1.1
    max_buckets: int = 400
    guard_days: int = 7
    guard_min_days: int = 2
    guard_min_spread: float = 0.2
    guard_prior_spread: float = 0.25
    tod_days: int = 7
    tod_window_hours: int = 1
    tod_shift_margin: float = 1.5
    rebase_points: int = 12
    rewarm_points: int = 6
    rebase_surprise: float = 2.0
    return_memory_days: float = 0.25
    return_sigmas: float = 2.0
    lag_sigmas: float = 2.0
    severity_per_decade: float = 25.0
    episode_clear_fraction: float = 0.5
    episode_quiet_points: int = 6
    episode_min_points: int = 12
    max_bins_per_day: int = 288
    weekly_bins: int = 168
    vol_window: int = 18  # successive changes the volatility evidence looks at (0: no volatility evidence)
    vol_factor: float = 3.0
    vol_tod_margin: float = 2.0  # 0: no time-of-day guard for volatility
    vol_exponent: float = 2.0
    peak_window_hours: int = 1  # a recurring daily peak's hours: its clock hour +- this (0: no peak rule)
    peak_share: float = 0.6  # of the last tod_days days that must peak there

    def __post_init__(self) -> None:
        if self.level_window < 3 or self.shift_window < 1 or self.warmup_points < self.level_window:
            raise ValueError("level_window >= 3, shift_window >= 1 and warmup_points >= level_window are required")
        if not (0 < self.profile_rate <= 1 and 0 < self.selection_rate <= 1 and 0 < self.selection_margin <= 1):
            raise ValueError("profile_rate, selection_rate and selection_margin must be in (0, 1]")
        if self.tail_memory < 10 or self.tail_trust <= 0 or self.tail_exponent <= 0 or self.bucket_ratio <= 1:
            raise ValueError("tail_memory >= 10, tail_trust > 0, tail_exponent > 0 and bucket_ratio > 1 are required")
        if self.guard_days < 1 or self.severity_per_decade <= 0 or not 0 < self.episode_clear_fraction <= 1:
            raise ValueError("guard_days >= 1, severity_per_decade > 0, episode_clear_fraction in (0, 1] required")
        if self.tod_days < 1 or self.tod_window_hours < 0 or self.tod_shift_margin < 0:
            raise ValueError("tod_days >= 1, tod_window_hours >= 0 and tod_shift_margin >= 0 are required")
        if self.vol_window < 0 or self.vol_window == 1 or self.vol_factor <= 0 or self.vol_exponent <= 0:
            raise ValueError("vol_window 0 (off) or >= 2, vol_factor > 0 and vol_exponent > 0 are required")
        if self.vol_tod_margin < 0:
            raise ValueError("vol_tod_margin >= 0 is required (0: no time-of-day guard for volatility)")
        if self.peak_window_hours < 0 or not 0 < self.peak_share <= 1:
            raise ValueError("peak_window_hours >= 0 (0: no peak rule) and peak_share in (0, 1] are required")
        if self.switch_days < 0 or self.switch_after_days < 0:
            raise ValueError("switch_days >= 0 and switch_after_days >= 0 are required (switch_days 0: no hold)")

    @property
    def tail_decay(self) -> float:
        return 1.0 - 1.0 / self.tail_memory


DEFAULT_MODEL = ModelParams()

Status = Literal["scored", "warming_up"]
Evidence = Literal["point", "shift", "volatility"]


@dataclass(frozen=True)
class SeriesResult:
    """What the model says about one value."""

    status: Status
    severity: float  # 0-100; 0 while warming up
    is_anomaly: bool  # opens an anomaly: severity >= threshold and none was open for this series
    ongoing: bool  # an anomaly is open for this series (opened now or earlier)
    expected: float  # the forecast for this value
    expected_low: float  # values in [low, high] would have stayed below the threshold (point evidence)
    expected_high: float
    evidence: Evidence  # which evidence gave the severity
    forecaster: str  # "level", "daily" or "weekly"
    point_surprise: float  # -log10 p of each evidence, before combining
    shift_surprise: float
    deviation: float  # signed: value - expected (point evidence), else the mean shift from the baseline
    volatility_surprise: float = 0.0
    mean_shift: float = 0.0  # signed: the last shift_window values' mean distance from the slow baseline, as judged

    @property
    def score(self) -> float:
        """Severity on [0, 1], as the backtest reports it."""
        return self.severity / 100.0

    @property
    def direction(self) -> Literal["high", "low"]:
        return "high" if self.deviation >= 0 else "low"


# --- Decaying histogram of distances ------------------------------------------------------------------


@dataclass
class TailHistogram:
    """Decaying counts of non-negative values in log-spaced buckets (ratio ``bucket_ratio`` apart).

    ``counts`` are effective counts: each past value weighs ``tail_decay ** age``. Exact zeros have their
    own bucket. A view (one per step) reads the tail empirically where ``tail_trust`` values support it
    and extends it as a power law beyond.
    """

    counts: dict[int, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.counts.values())

    def copy(self) -> TailHistogram:
        return TailHistogram(dict(self.counts))

    def add(self, value: float, params: ModelParams) -> None:
        decay = params.tail_decay
        counts = self.counts
        for bucket, count in list(counts.items()):
            if count * decay < 1e-4:  # all but decayed away: forget the bucket, keeping the state small
                del counts[bucket]
            else:
                counts[bucket] = count * decay
        bucket = _bucket(value, params)
        counts[bucket] = counts.get(bucket, 0.0) + 1.0
        if len(counts) > params.max_buckets:
            # Merge the smallest non-zero bucket into its neighbour: resolution is lost only at the low end.
            ordered = sorted(k for k in counts if k != _ZERO_BUCKET)
            counts[ordered[1]] += counts.pop(ordered[0])

    def view(self, params: ModelParams, exponent: float | None = None) -> TailView:
        """The buckets largest first and the trusted anchor, for the queries of one step.

        ``exponent``: the power law beyond the anchor (default ``params.tail_exponent``).
        """
        items = sorted(self.counts.items(), reverse=True)
        anchor, anchor_weight, weight = 0.0, 0.0, 0.0
        for bucket, count in items:
            weight += count
            if weight >= params.tail_trust:
                anchor, anchor_weight = _bucket_value(bucket, params), weight
                break
        total = sum(count for _, count in items)
        return TailView(items, total, anchor, anchor_weight, params.tail_exponent if exponent is None else exponent)


@dataclass(frozen=True)
class TailView:
    items: list[tuple[int, float]]  # (bucket, effective count), largest bucket first
    total: float
    anchor: float  # the largest bucket value with at least tail_trust values at or beyond it (0: none)
    anchor_weight: float
    exponent: float  # of the power law beyond the anchor

    def probability_at_least(self, value: float, params: ModelParams) -> float:
        if self.total <= 0:
            return 1.0
        target = _bucket(value, params)
        at_least = 0.0
        for bucket, weight in self.items:
            if bucket > target:
                at_least += weight
            elif bucket == target:
                at_least += 0.5 * weight
            else:
                break
        if at_least >= params.tail_trust:
            return at_least / self.total
        if self.anchor <= 0 or value <= self.anchor:
            # Fewer than tail_trust values in all, or only zeros beyond: as rare as half a value.
            return max(at_least, 0.5) / self.total
        return self.anchor_weight / self.total * (value / self.anchor) ** (-self.exponent)

    def value_at_probability(self, probability: float, params: ModelParams) -> float:
        """The smallest distance whose probability is at most ``probability`` (the inverse of the above)."""
        if self.total <= 0:
            return math.inf
        if self.anchor > 0 and probability < self.anchor_weight / self.total:
            return self.anchor * (self.anchor_weight / self.total / probability) ** (1.0 / self.exponent)
        above = 0.0
        limit = probability * self.total
        for bucket, weight in self.items:
            if above + 0.5 * weight > limit:
                return _bucket_upper(bucket, params)
            above += weight
        return 0.0


def _bucket(value: float, params: ModelParams) -> int:
    if value <= 0:
        return _ZERO_BUCKET
    # A distance between two finite values can still overflow to infinity: count it with the largest.
    return max(-32000, min(32000, math.ceil(math.log(min(value, 1e308)) / math.log(params.bucket_ratio))))


def _bucket_value(bucket: int, params: ModelParams) -> float:
    return 0.0 if bucket == _ZERO_BUCKET else params.bucket_ratio ** (bucket - 0.5)


def _bucket_upper(bucket: int, params: ModelParams) -> float:
    return 0.0 if bucket == _ZERO_BUCKET else params.bucket_ratio**bucket


# --- Daily maxima -------------------------------------------------------------------------------------


@dataclass
class DailyMaxima:
    """The largest point distance of each of the last ``guard_days`` days (days counted from the first value)."""

    maxima: list[float] = field(default_factory=list)
    current: float = 0.0
    day: int = 0

    def advance_to(self, day: int, params: ModelParams) -> None:
        while self.day < day:
            self.maxima.append(self.current)
            del self.maxima[: -params.guard_days]
            self.current = 0.0
            self.day += 1
            if day - self.day > params.guard_days:  # a long gap: the days in between had no values
                self.day = day

    def add(self, value: float) -> None:
        self.current = max(self.current, value)

    def probability_of_day_reaching(self, value: float, params: ModelParams) -> float:
        """How likely a day's maximum reaches ``value``: a Gumbel law for the log maxima, fitted robustly.

        0 (no objection) until ``guard_min_days`` days have been seen.
        """
        if len(self.maxima) < params.guard_min_days:
            return 0.0
        if value <= 0:
            return 1.0
        logs = [math.log(m) for m in self.maxima if m > 0]
        if not logs:
            return 1e-12  # every past day was flat: any change is new
        location, spread = self._fit(logs, params)
        reduced = (math.log(value) - location) / spread
        if reduced > 700:
            return 1e-300
        if reduced < -50:
            return 1.0
        return max(-math.expm1(-math.exp(-reduced)), 1e-300)

    def value_at_probability(self, probability: float, params: ModelParams) -> float:
        logs = [math.log(m) for m in self.maxima if m > 0]
        if len(self.maxima) < params.guard_min_days or not logs:
            return 0.0
        location, spread = self._fit(logs, params)
        reduced = -math.log(-math.log1p(-min(max(probability, 1e-300), 1 - 1e-12)))
        return math.exp(min(location + spread * reduced, 700.0))

    @staticmethod
    def _fit(logs: list[float], params: ModelParams) -> tuple[float, float]:
        middle = statistics.median(logs)
        # Two days that disagree (a quiet first day, then a day with a large job) leave open what most days
        # reach, so their spread counts as well; the prior is only a floor.
        floor = params.guard_min_spread if len(logs) >= 3 else params.guard_prior_spread
        spread = max(statistics.median(abs(x - middle) for x in logs) / _GUMBEL_MAD, floor)
        return middle + spread * _LN_LN_2, spread  # a Gumbel's median is location - spread * ln(ln 2)


@dataclass
class HourlyMaxima:
    """The largest distance (shift or volatility) of each clock hour of the last ``tod_days`` days, in a ring.

    Slot ``hour % size`` holds absolute hour ``hour`` (epoch seconds // 3600) as a histogram bucket (10 %
    resolution, two bytes: an ``array``, as a list of Python ints would take ten times the memory in a
    Lambda holding thousands of states); ``_NO_VALUE`` marks an hour without a judged value. ``usual()`` is
    what this time of day usually reaches: the median, over the last ``tod_days`` days, of each day's
    largest distance within ``tod_window_hours`` of the same time of day.
    """

    buckets: array[int] = field(default_factory=lambda: array("h"))
    hour: int = -1  # the newest slot's absolute hour

    @staticmethod
    def size(params: ModelParams) -> int:
        return 24 * params.tod_days + params.tod_window_hours + 1

    def advance_to(self, hour: int, params: ModelParams) -> None:
        size = self.size(params)
        if not self.buckets:
            self.buckets, self.hour = array("h", [_NO_VALUE]) * size, hour
            return
        for step in range(self.hour + 1, min(hour, self.hour + size) + 1):
            self.buckets[step % size] = _NO_VALUE
        self.hour = max(self.hour, hour)

    def add(self, distance: float, params: ModelParams) -> None:
        slot = self.hour % self.size(params)
        bucket = _bucket(distance, params)
        previous = self.buckets[slot]
        self.buckets[slot] = bucket if previous == _NO_VALUE else max(previous, bucket)

    def usual(self, params: ModelParams) -> float | None:
        """None until ``guard_min_days`` earlier days had values near this time of day."""
        if not self.buckets:
            return None
        size, width = self.size(params), params.tod_window_hours
        maxima = []
        for days_back in range(1, params.tod_days + 1):
            centre = self.hour - 24 * days_back
            near = [self.buckets[(centre + offset) % size] for offset in range(-width, width + 1)]
            seen = [bucket for bucket in near if bucket != _NO_VALUE]
            if seen:
                maxima.append(_bucket_value(max(seen), params))
        return statistics.median(maxima) if len(maxima) >= params.guard_min_days else None

    def maxima_away_from_recurring_peak(self, params: ModelParams) -> list[float] | None:
        """Each of the last ``tod_days`` days' largest distance outside its recurring peak's hours.

        A *day* here is a full 24 hours ending with the hour before the current one (at least 12 of them
        with values), so the answer changes only when the hour does. The recurring peak is the clock hour
        within ``peak_window_hours`` of which at least ``peak_share`` of those days (and three) had a clear
        largest distance (no hour outside that window in the same 10 % bucket). None when there is no such
        peak (maxima at random times), fewer than three days, or the current hour is within the peak's
        hours (plus ``tod_window_hours``, as jobs drift).
        """
        if not self.buckets:
            return None
        size, span = self.size(params), 24 * params.tod_days
        first = self.hour - span  # the oldest hour looked at; position i of each day is clock hour (first + i) % 24
        ring = self.buckets[first % size :] + self.buckets[: first % size]
        days = [ring[offset : offset + 24] for offset in range(0, span, 24)]
        days = [day for day in days if day.count(_NO_VALUE) <= 12]  # at least 12 hours with values
        if len(days) < 3:
            return None
        width = params.peak_window_hours
        peaks_at = [0] * 24  # days whose maximum stands out at that clock hour
        for day in days:
            top = max(day)
            at = day.index(top)
            if _max_outside(day, at, width) < top:  # a clear peak: no other hour reaches its (10 %) bucket
                peaks_at[(first + at) % 24] += 1
        counts = [sum(peaks_at[(hour + k) % 24] for k in range(-width, width + 1)) for hour in range(24)]
        peak = max(range(24), key=counts.__getitem__)
        if counts[peak] < max(3, math.ceil(params.peak_share * len(days))):
            return None
        reach = width + params.tod_window_hours
        if _clock_distance(self.hour % 24, peak) <= reach:
            return None
        centre = (peak - first) % 24  # the peak's position in each day
        away = [_max_outside(day, centre, reach) for day in days]
        maxima = [_bucket_value(bucket, params) for bucket in away if bucket != _NO_VALUE]
        return maxima if len(maxima) >= params.guard_min_days else None


def _max_outside(day: array[int], centre: int, width: int) -> int:
    """The largest bucket of a 24-hour day outside positions ``centre`` +- ``width`` (around midnight too)."""
    if 2 * width + 1 >= 24:
        return _NO_VALUE
    turned = day[centre - 12 :] + day[: centre - 12] if centre >= 12 else day[centre + 12 :] + day[: centre + 12]
    return max(turned[: 12 - width] + turned[13 + width :])


def _clock_distance(hour: int, other: int) -> int:
    """Hours between two clock hours (0-23), around midnight too."""
    distance = abs(hour - other) % 24
    return min(distance, 24 - distance)


# --- State --------------------------------------------------------------------------------------------


@dataclass
class SeriesState:
    """Everything the model remembers about one series (see the module docstring for its size)."""

    count: int = 0
    first_time: float | None = None  # epoch seconds
    last_time: float | None = None
    spacing_samples: list[float] = field(default_factory=list)
    spacing: float | None = None  # seconds between values: the median of the first gaps
    # The profiles and their visit counts are arrays (float64, bytes): as lists of Python numbers they would
    # take about four times the memory, and a Lambda holds thousands of states.
    daily: array[float] = field(default_factory=lambda: array("d"))
    daily_seen: array[int] = field(default_factory=lambda: array("B"))
    weekly: array[float] = field(default_factory=lambda: array("d"))
    weekly_seen: array[int] = field(default_factory=lambda: array("B"))
    profile_level: float | None = None
    profile_ready: bool = False  # the daily profile holds offsets (after the first day), not raw means
    recent: list[list[float]] = field(default_factory=lambda: [[], [], []])  # per forecaster: value - profile
    typical_error: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # clipped mean |error|
    mean_error: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # for choosing the forecaster
    slow_level: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    shift_window: list[float] = field(default_factory=list)
    point_tail: TailHistogram = field(default_factory=TailHistogram)
    shift_tail: TailHistogram = field(default_factory=TailHistogram)
    daily_maxima: DailyMaxima = field(default_factory=DailyMaxima)
    hourly_shift: HourlyMaxima = field(default_factory=HourlyMaxima)
    vol_values: list[float] = field(default_factory=list)  # the last vol_window + 1 values
    vol_tail: TailHistogram = field(default_factory=TailHistogram)
    hourly_vol: HourlyMaxima = field(default_factory=HourlyMaxima)
    hourly_point: HourlyMaxima = field(default_factory=HourlyMaxima)  # for the recurring-peak rule
    rewarm: int = 0  # values still to learn, not judge, after a long gap
    rebase_run: int = 0
    forecaster: int = 0  # the forecaster used last
    switch_run: int = 0  # consecutive values a simpler forecaster than that one was preferred
    used_for: int = 0  # consecutive values that forecaster has been in use
    level_before: list[float] = field(default_factory=list)  # per forecaster: recent level before an unusual run
    level_before_left: int = 0  # values it is still kept for
    seen_negative: bool = False
    open_anomaly: bool = False
    open_for: int = 0  # intervals since the open anomaly started
    quiet_for: int = 0  # consecutive intervals below the clearing level

    def copy(self) -> SeriesState:
        return SeriesState(
            count=self.count,
            first_time=self.first_time,
            last_time=self.last_time,
            spacing=self.spacing,
            profile_level=self.profile_level,
            profile_ready=self.profile_ready,
            rebase_run=self.rebase_run,
            forecaster=self.forecaster,
            switch_run=self.switch_run,
            used_for=self.used_for,
            level_before=list(self.level_before),
            level_before_left=self.level_before_left,
            seen_negative=self.seen_negative,
            open_anomaly=self.open_anomaly,
            open_for=self.open_for,
            quiet_for=self.quiet_for,
            spacing_samples=list(self.spacing_samples),
            daily=array("d", self.daily),
            daily_seen=array("B", self.daily_seen),
            weekly=array("d", self.weekly),
            weekly_seen=array("B", self.weekly_seen),
            recent=[list(values) for values in self.recent],
            typical_error=list(self.typical_error),
            mean_error=list(self.mean_error),
            slow_level=list(self.slow_level),
            shift_window=list(self.shift_window),
            point_tail=self.point_tail.copy(),
            shift_tail=self.shift_tail.copy(),
            daily_maxima=DailyMaxima(list(self.daily_maxima.maxima), self.daily_maxima.current, self.daily_maxima.day),
            hourly_shift=HourlyMaxima(array("h", self.hourly_shift.buckets), self.hourly_shift.hour),
            vol_values=list(self.vol_values),
            vol_tail=self.vol_tail.copy(),
            hourly_vol=HourlyMaxima(array("h", self.hourly_vol.buckets), self.hourly_vol.hour),
            hourly_point=HourlyMaxima(array("h", self.hourly_point.buckets), self.hourly_point.hour),
            rewarm=self.rewarm,
        )

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able document: number lists as base64 float64/int arrays, the rest as scalars."""
        return {
            "f": STATE_FORMAT,
            "n": self.count,
            "t0": self.first_time,
            "t": self.last_time,
            "gaps": _pack_floats(self.spacing_samples) if self.spacing is None else None,
            "dt": self.spacing,
            "day": _pack_floats(self.daily),
            "dayn": _pack_counts(self.daily_seen),
            "week": _pack_floats(self.weekly),
            "weekn": _pack_counts(self.weekly_seen),
            "pl": self.profile_level,
            "pr": int(self.profile_ready),
            "recent": [_pack_floats(values) for values in self.recent],
            "err": self.typical_error,
            "mae": self.mean_error,
            "slow": self.slow_level,
            "shift": _pack_floats(self.shift_window),
            "pt": _pack_histogram(self.point_tail),
            "st": _pack_histogram(self.shift_tail),
            "dmax": _pack_floats(self.daily_maxima.maxima),
            "dcur": self.daily_maxima.current,
            "dday": self.daily_maxima.day,
            "hshift": [_pack_buckets(self.hourly_shift.buckets), self.hourly_shift.hour],
            "vol": [_pack_floats(self.vol_values), _pack_histogram(self.vol_tail)],
            "hvol": [_pack_buckets(self.hourly_vol.buckets), self.hourly_vol.hour],
            "hpoint": [_pack_buckets(self.hourly_point.buckets), self.hourly_point.hour],
            "rw": self.rewarm,
            "rb": self.rebase_run,
            "fc": [self.forecaster, self.switch_run, self.used_for],
            "before": [self.level_before, self.level_before_left],
            "neg": int(self.seen_negative),
            "open": [int(self.open_anomaly), self.open_for, self.quiet_for],
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SeriesState:
        """Inverse of ``to_dict``. Raises ``ValueError`` for a document of another format or a damaged one."""
        try:
            if document.get("f") != STATE_FORMAT:
                raise ValueError(f"series state format {document.get('f')!r} is not {STATE_FORMAT}")
            open_flag, open_for, quiet_for = (int(x) for x in document["open"])
            return cls(
                count=int(document["n"]),
                first_time=_optional_float(document["t0"]),
                last_time=_optional_float(document["t"]),
                spacing_samples=_unpack_floats(document["gaps"]) if document.get("gaps") else [],
                spacing=_optional_float(document["dt"]),
                daily=_unpack_packed("d", document["day"]),
                daily_seen=_unpack_counts(document["dayn"]),
                weekly=_unpack_packed("d", document["week"]),
                weekly_seen=_unpack_counts(document["weekn"]),
                profile_level=_optional_float(document["pl"]),
                profile_ready=bool(document["pr"]),
                recent=[_unpack_floats(values) for values in document["recent"]],
                typical_error=[float(x) for x in document["err"]],
                mean_error=[float(x) for x in document["mae"]],
                slow_level=[float(x) for x in document["slow"]],
                shift_window=_unpack_floats(document["shift"]),
                point_tail=_unpack_histogram(document["pt"]),
                shift_tail=_unpack_histogram(document["st"]),
                daily_maxima=DailyMaxima(
                    _unpack_floats(document["dmax"]), float(document["dcur"]), int(document["dday"])
                ),
                hourly_shift=HourlyMaxima(_unpack_ring(document["hshift"][0]), int(document["hshift"][1])),
                vol_values=_unpack_floats(document["vol"][0]),
                vol_tail=_unpack_histogram(document["vol"][1]),
                hourly_vol=HourlyMaxima(_unpack_ring(document["hvol"][0]), int(document["hvol"][1])),
                # Added within format 5: a document written before it starts the ring empty (the global
                # daily maxima guard the point evidence meanwhile, as they did), rather than being rebuilt.
                hourly_point=(
                    HourlyMaxima(_unpack_ring(document["hpoint"][0]), int(document["hpoint"][1]))
                    if "hpoint" in document
                    else HourlyMaxima()
                ),
                rewarm=int(document["rw"]),
                rebase_run=int(document["rb"]),
                forecaster=int(document["fc"][0]),
                switch_run=int(document["fc"][1]),
                used_for=int(document["fc"][2]),
                level_before=[float(x) for x in document["before"][0]],
                level_before_left=int(document["before"][1]),
                seen_negative=bool(document["neg"]),
                open_anomaly=bool(open_flag),
                open_for=open_for,
                quiet_for=quiet_for,
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"damaged series state: {error}") from error


def _b64encode(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _pack_array(typecode: str, values: Sequence[Any]) -> str:
    """``typecode`` ``d``: float64, so a state read back judges exactly as the one written (float32 would
    change verdicts slightly); ``h``: two-byte histogram buckets."""
    return _b64encode(array(typecode, values).tobytes()).decode("ascii")


def _unpack_packed(typecode: str, text: str) -> array[Any]:
    packed = array(typecode)
    packed.frombytes(binascii.a2b_base64(text))
    return packed


def _unpack_array(typecode: str, text: str) -> list[Any]:
    return _unpack_packed(typecode, text).tolist()


def _pack_floats(values: Sequence[float]) -> str:
    return _pack_array("d", values)


def _unpack_floats(text: str) -> list[float]:
    return _unpack_array("d", text)


def _pack_counts(values: Sequence[int]) -> str:
    return _b64encode(bytes(values)).decode("ascii")  # visit counts are kept at most 255


def _unpack_counts(text: str) -> array[int]:
    return array("B", binascii.a2b_base64(text))


def _pack_buckets(values: Sequence[int]) -> str:
    return _pack_array("h", values)


def _unpack_buckets(text: str) -> list[int]:
    return _unpack_array("h", text)


def _unpack_ring(text: str) -> array[int]:
    return _unpack_packed("h", text)  # kept as an array (see HourlyMaxima)


def _pack_histogram(histogram: TailHistogram) -> list[str]:
    return [_pack_buckets(list(histogram.counts)), _pack_floats(list(histogram.counts.values()))]


def _unpack_histogram(packed: list[str]) -> TailHistogram:
    buckets, counts = _unpack_buckets(packed[0]), _unpack_floats(packed[1])
    if len(buckets) != len(counts):
        raise ValueError("histogram buckets and counts differ in length")
    return TailHistogram(dict(zip(buckets, counts, strict=True)))


# --- The model ------------------------------------------------------------------------------------------


def severity_for_surprise(surprise: float, params: ModelParams = DEFAULT_MODEL) -> float:
    return min(100.0, max(0.0, params.severity_per_decade * surprise))


def surprise_for_severity(severity: float, params: ModelParams = DEFAULT_MODEL) -> float:
    return severity / params.severity_per_decade


def update(
    state: SeriesState | None,
    timestamp: datetime | float,
    value: float,
    threshold: float,
    params: ModelParams = DEFAULT_MODEL,
    *,
    judge: bool = True,
) -> tuple[SeriesResult, SeriesState]:
    """Judge ``value`` at ``timestamp`` (after the previous one), then learn it. ``threshold`` is a severity.

    With ``judge=False`` the value is learnt and its severity computed, but no decision is made and the
    open-anomaly state is left as it was (for catching up on missed intervals).

    Values must come in time order: a timestamp before the last one is an error; an equal one (a repeated
    row, as some exports have around clock changes) is simply another value. ``state`` is not modified.
    """
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    now = _epoch_seconds(timestamp)
    new = SeriesState() if state is None else state.copy()
    if new.last_time is not None and now < new.last_time:
        raise ValueError(f"timestamps must not go back: {now} is before {new.last_time}")
    _observe_time(new, now, params)

    daily_bin, weekly_bin = _bins(new, now)
    daily_offset = (
        new.daily[daily_bin] if daily_bin is not None and new.profile_ready and new.daily_seen[daily_bin] else 0.0
    )
    weekly_offset = new.weekly[weekly_bin] if weekly_bin is not None and _weekly_established(new) else 0.0
    offsets = (0.0, daily_offset, daily_offset + weekly_offset)
    preferred = _choose_forecaster(new, daily_bin, weekly_bin, params)
    chosen = _hold_forecaster(new, preferred, daily_bin, weekly_bin, params)
    forecasts = [
        (statistics.median(recent) if recent else new.slow_level[index]) + offsets[index]
        for index, recent in enumerate(new.recent)
    ]
    if new.count == 1:
        forecasts = [value, value, value]
        new.slow_level = [value, value, value]
    expected = forecasts[chosen]
    point_deviation = value - expected
    baseline = new.slow_level[chosen] + offsets[chosen]
    baseline_deviation = value - baseline
    new.shift_window.append(baseline_deviation)
    del new.shift_window[: -params.shift_window]
    shift_deviation = sum(new.shift_window) / len(new.shift_window)
    # What the model learns from: the distances above (for the level forecaster away from the baseline, the
    # point distance from the nearer of the two: see the module docstring). What it judges: the forecast's
    # distance, unless the value is back within the usual range of the level before an unusual run, closer
    # than the forecast. Then the return to normal after a lasting drop or rise is judged as such, although
    # the recent level followed it.
    learnt_point, learnt_shift = abs(point_deviation), abs(shift_deviation)
    sigma = 1.2533 * new.typical_error[chosen]  # mean |error| -> sigma
    if chosen == _NONE and abs(expected - baseline) >= params.lag_sigmas * sigma:  # the median lags
        learnt_point = min(learnt_point, abs(baseline_deviation))
    usual = params.return_sigmas * sigma
    if new.level_before and new.level_before_left > 0:
        normal = new.level_before[chosen] + offsets[chosen]
        if abs(value - normal) <= usual and abs(value - normal) < abs(point_deviation):
            expected, point_deviation = normal, value - normal
            # The last values' mean shift, measured from that normal.
            from_normal = shift_deviation - (normal - baseline)
            shift_deviation = min(shift_deviation, from_normal, key=abs)

    vol_distance = None
    if params.vol_window > 0:
        new.vol_values.append(value)
        del new.vol_values[: -(params.vol_window + 1)]
        vol_distance = _volatility(new.vol_values, params)

    scored = new.count > params.warmup_points and new.rewarm == 0
    point_distance, shift_distance = abs(point_deviation), abs(shift_deviation)  # as judged
    point_surprise = shift_surprise = vol_surprise = 0.0
    threshold_surprise = surprise_for_severity(threshold, params) + math.log10(2.0)
    low, high = -math.inf, math.inf
    if scored:
        point_view = new.point_tail.view(params)
        point_guard = _point_guard(new, params)
        point_probability = max(
            point_view.probability_at_least(point_distance, params),
            point_guard.probability_of_day_reaching(point_distance, params),
        )
        point_surprise = -math.log10(max(point_probability, 1e-300))
        shift_view = new.shift_tail.view(params)
        shift_probability = shift_view.probability_at_least(shift_distance, params)
        # What this time of day reaches on most days (the echo of a job's spike at its usual hour) is
        # ordinary; looked up only when the tail alone would call the shift unusual.
        usual_shift = new.hourly_shift.usual(params) if shift_probability < 0.5 else None
        if usual_shift is not None and shift_distance <= params.tod_shift_margin * usual_shift:
            shift_probability = 0.5
        shift_surprise = -math.log10(max(shift_probability, 1e-300))
        if vol_distance is not None:
            vol_view = new.vol_tail.view(params, exponent=params.vol_exponent)
            vol_probability = vol_view.probability_at_least(vol_distance, params)
            if vol_probability < 0.5 and params.vol_tod_margin > 0:
                usual_vol = new.hourly_vol.usual(params)
                if usual_vol is not None and vol_distance <= params.vol_tod_margin * usual_vol:
                    vol_probability = 0.5
            # Counted as a look of its own: times vol_factor, where the other two count times two.
            vol_surprise = -math.log10(max(vol_probability, 1e-300)) - math.log10(params.vol_factor / 2.0)
        # The range of values whose point evidence stays below the threshold.
        band_probability = 10.0 ** (-threshold_surprise)
        band = max(
            point_view.value_at_probability(band_probability, params),
            point_guard.value_at_probability(band_probability, params),
        )
        low, high = expected - band, expected + band
    surprise = max(point_surprise, shift_surprise, vol_surprise)
    severity = severity_for_surprise(surprise - math.log10(2.0), params) if scored else 0.0
    evidence: Evidence = "point" if point_surprise >= shift_surprise else "shift"
    if vol_surprise > max(point_surprise, shift_surprise):
        evidence = "volatility"
    opened = _decide(new, severity, threshold, params) if scored and judge else False
    if value < 0:
        new.seen_negative = True
    if not new.seen_negative:
        low = max(low, 0.0)  # a series that was never negative is not expected to go below zero

    if scored:
        learnt_shift_surprise = -math.log10(max(shift_view.probability_at_least(learnt_shift, params), 1e-300))
        _remember_level_before(new, max(point_surprise, learnt_shift_surprise), forecasts, offsets, params)
    new.rewarm = max(0, new.rewarm - 1)
    _learn(new, now, value, forecasts, offsets, daily_bin, weekly_bin, learnt_point, learnt_shift, chosen, params)
    if vol_distance is not None:
        new.vol_tail.add(vol_distance, params)
        if params.vol_tod_margin > 0 and new.count > params.warmup_points:
            new.hourly_vol.add(vol_distance, params)
    if scored:
        # A change is accepted on the evidence against the current baseline, so a return to an earlier
        # normal is accepted as well, in time.
        _maybe_rebase(new, learnt_shift_surprise, abs(baseline_deviation) > learnt_point, params)
    result = SeriesResult(
        status="scored" if scored else "warming_up",
        severity=severity,
        is_anomaly=opened,
        ongoing=new.open_anomaly,
        expected=expected,
        expected_low=low,
        expected_high=high,
        evidence=evidence,
        forecaster=FORECASTERS[chosen],
        point_surprise=point_surprise,
        shift_surprise=shift_surprise,
        deviation=point_deviation if evidence == "point" else shift_deviation,
        volatility_surprise=vol_surprise,
        mean_shift=shift_deviation,
    )
    return result, new


def _point_guard(state: SeriesState, params: ModelParams) -> DailyMaxima:
    """What most days reach, for the point evidence: every day's maximum, or, away from a recurring daily peak
    (a nightly job), each day's maximum outside that peak's hours. The job's spike then stays ordinary at its
    hour without making a spike of the same size ordinary at any hour."""
    if params.peak_window_hours > 0:
        away = state.hourly_point.maxima_away_from_recurring_peak(params)
        if away is not None:
            return DailyMaxima(away)
    return state.daily_maxima


def _volatility(values: list[float], params: ModelParams) -> float | None:
    """The median distance of the last ``vol_window`` successive changes from their median (None before)."""
    if len(values) < params.vol_window + 1:
        return None
    changes = [values[i] - values[i - 1] for i in range(1, len(values))]
    middle = statistics.median(changes)
    return statistics.median(abs(change - middle) for change in changes)


def decide_alerts(severities: Sequence[float], threshold: float, params: ModelParams = DEFAULT_MODEL) -> list[bool]:
    """The decisions ``update`` makes for a series of severities, at another threshold (for threshold sweeps).

    Exact: the model learns nothing from its own decisions, so only the open-anomaly rule depends on the
    threshold. It is applied here to the intervals at or above the clearing level only, jumping over the
    quiet ones in between (same outcome as calling the rule for every interval, much faster for a sweep).
    """
    decisions = [False] * len(severities)
    clear = params.episode_clear_fraction * threshold
    state = SeriesState()
    previous = -1
    for index, severity in enumerate(severities):
        if severity < clear:
            continue
        if state.open_anomaly:
            quiet = index - previous - 1  # intervals below the clearing level since the last loud one
            needed = max(params.episode_quiet_points - state.quiet_for, params.episode_min_points - state.open_for)
            if quiet >= max(needed, 1):
                state.open_anomaly = False
            else:
                state.open_for += quiet
                state.quiet_for += quiet
        decisions[index] = _decide(state, severity, threshold, params)
        previous = index
    return decisions


def _decide(state: SeriesState, severity: float, threshold: float, params: ModelParams) -> bool:
    """The user-facing rule: open an anomaly at the threshold unless one is open; close it after a quiet spell."""
    if state.open_anomaly:
        state.open_for += 1
        state.quiet_for = 0 if severity >= params.episode_clear_fraction * threshold else state.quiet_for + 1
        if state.quiet_for >= params.episode_quiet_points and state.open_for >= params.episode_min_points:
            state.open_anomaly = False
        return False
    if severity >= threshold:
        state.open_anomaly, state.open_for, state.quiet_for = True, 0, 0
        return True
    return False


def _epoch_seconds(timestamp: datetime | float) -> float:
    if isinstance(timestamp, datetime):
        moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(timestamp)


def _observe_time(state: SeriesState, now: float, params: ModelParams) -> None:
    state.count += 1
    if state.first_time is None:
        state.first_time = now
    if state.last_time is not None:
        gap = now - state.last_time
        if state.spacing is None:
            if gap > 0:
                state.spacing_samples.append(gap)
            if len(state.spacing_samples) >= 3:
                state.spacing = statistics.median(state.spacing_samples)
                state.spacing_samples = []
                _allocate_profiles(state, params)
        elif gap > params.level_window * state.spacing:
            # A long gap: the recent level is stale. The next values rebuild it and are learnt, not judged.
            state.recent = [[], [], []]
            state.shift_window = []
            state.vol_values = []
            state.rewarm = params.rewarm_points
    state.last_time = now
    state.daily_maxima.advance_to(int((now - state.first_time) // SECONDS_PER_DAY), params)
    state.hourly_shift.advance_to(math.floor(now / 3600.0), params)
    if params.peak_window_hours > 0:
        state.hourly_point.advance_to(math.floor(now / 3600.0), params)
    if params.vol_window > 0 and params.vol_tod_margin > 0:
        state.hourly_vol.advance_to(math.floor(now / 3600.0), params)


def _allocate_profiles(state: SeriesState, params: ModelParams) -> None:
    spacing = state.spacing or SECONDS_PER_DAY
    daily_bins = min(params.max_bins_per_day, max(1, round(SECONDS_PER_DAY / spacing)))
    weekly_bins = min(params.weekly_bins, max(1, round(SECONDS_PER_WEEK / spacing)))
    # A cycle needs at least two bins to be a cycle.
    daily_bins, weekly_bins = (daily_bins if daily_bins >= 2 else 0), (weekly_bins if weekly_bins >= 2 else 0)
    state.daily, state.daily_seen = array("d", [0.0]) * daily_bins, array("B", [0]) * daily_bins
    state.weekly, state.weekly_seen = array("d", [0.0]) * weekly_bins, array("B", [0]) * weekly_bins


def _bins(state: SeriesState, now: float) -> tuple[int | None, int | None]:
    daily = int(now % SECONDS_PER_DAY / SECONDS_PER_DAY * len(state.daily)) if state.daily else None
    # Epoch day 0 was a Thursday; the weekly bins simply start there.
    weekly = int(now % SECONDS_PER_WEEK / SECONDS_PER_WEEK * len(state.weekly)) if state.weekly else None
    return daily, weekly


def _choose_forecaster(state: SeriesState, daily_bin: int | None, weekly_bin: int | None, params: ModelParams) -> int:
    """The forecaster to trust now: a cycle only once it was seen twice, and only if it forecasts clearly better."""
    if state.count <= params.level_window:
        return _NONE
    errors = state.mean_error
    chosen = _NONE
    if _available(state, _DAILY, daily_bin, weekly_bin) and errors[_DAILY] < params.selection_margin * errors[_NONE]:
        chosen = _DAILY
    if _available(state, _WEEKLY, daily_bin, weekly_bin) and errors[_WEEKLY] < params.selection_margin * errors[chosen]:
        chosen = _WEEKLY
    return chosen


def _available(state: SeriesState, forecaster: int, daily_bin: int | None, weekly_bin: int | None) -> bool:
    """Whether a forecaster can be used for this bin: a daily bin seen twice, a weekly bin once the weeks are known."""
    if forecaster == _DAILY:
        return daily_bin is not None and state.profile_ready and state.daily_seen[daily_bin] >= 2
    if forecaster == _WEEKLY:
        return (
            daily_bin is not None
            and weekly_bin is not None
            and bool(state.weekly_seen[weekly_bin])
            and _weekly_established(state)
        )
    return True


def _values_per_day(state: SeriesState) -> float:
    return SECONDS_PER_DAY / (state.spacing or 300.0)  # 5-minute data until the spacing is known


def _hold_forecaster(
    state: SeriesState, chosen: int, daily_bin: int | None, weekly_bin: int | None, params: ModelParams
) -> int:
    """A cycle in use for ``switch_after_days`` is kept until a simpler one was preferred ``switch_days`` in a row."""
    previous = state.forecaster
    per_day = _values_per_day(state)
    if (
        chosen < previous
        and params.switch_days > 0
        and state.used_for >= params.switch_after_days * per_day
        and _available(state, previous, daily_bin, weekly_bin)
    ):
        state.switch_run += 1
        if state.switch_run < params.switch_days * per_day:
            return previous
    state.switch_run = 0
    state.used_for = min(state.used_for + 1, 1 << 30) if chosen == previous else 1
    state.forecaster = chosen
    return chosen


def _clip(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def _learn(
    state: SeriesState,
    now: float,
    value: float,
    forecasts: list[float],
    offsets: tuple[float, float, float],
    daily_bin: int | None,
    weekly_bin: int | None,
    point_distance: float,
    shift_distance: float,
    chosen: int,
    params: ModelParams,
) -> None:
    window = params.level_window
    warm = state.count > window
    if warm:
        state.point_tail.add(point_distance, params)
        state.shift_tail.add(shift_distance, params)
    if state.count > params.warmup_points:
        # Only judged values: the warm-up's errors say more about the young model than about the series' days.
        state.daily_maxima.add(point_distance)
        state.hourly_shift.add(shift_distance, params)
        if params.peak_window_hours > 0:
            state.hourly_point.add(point_distance, params)
    limits = []
    for index in range(3):
        error = abs(value - forecasts[index])
        if warm:
            limit = params.clip_sigmas * 1.2533 * state.typical_error[index]  # mean |error| -> sigma
            clipped = min(error, limit) if limit > 0 else error
            state.typical_error[index] += 0.02 * (clipped - state.typical_error[index])
            state.mean_error[index] += params.selection_rate * (error - state.mean_error[index])
        else:
            # The first values: plain running means (there is no scale to clip against yet).
            n = state.count
            state.typical_error[index] += (error - state.typical_error[index]) / n
            state.mean_error[index] = state.typical_error[index]
        limits.append(params.clip_sigmas * 1.2533 * state.typical_error[index] if warm else math.inf)
        recent = state.recent[index]
        recent.append(value - offsets[index])
        del recent[:-window]
    per_day = _values_per_day(state)
    slow_rate = max(1.0 / state.count, 1.0 / (params.slow_memory_days * per_day))
    for index in range(3):
        step = value - offsets[index] - state.slow_level[index]
        state.slow_level[index] += slow_rate * _clip(step, limits[index])
    _learn_profiles(state, value, daily_bin, weekly_bin, limits[_DAILY], per_day, chosen, params)


def _learn_profiles(
    state: SeriesState,
    value: float,
    daily_bin: int | None,
    weekly_bin: int | None,
    limit: float,
    per_day: float,
    chosen: int,
    params: ModelParams,
) -> None:
    if daily_bin is None:
        return
    if not state.profile_ready:
        # The first day: each bin keeps the mean of its raw values. Offsets from a level learnt on the way
        # would be biased wherever the level was still moving, so the day's mean is taken once it is complete.
        seen = state.daily_seen[daily_bin]
        state.daily[daily_bin] += (value - state.daily[daily_bin]) / (seen + 1)
        state.daily_seen[daily_bin] = min(seen + 1, 255)
        if (state.last_time or 0.0) - (state.first_time or 0.0) >= SECONDS_PER_DAY - (state.spacing or 0.0):
            seen_bins = [index for index, count in enumerate(state.daily_seen) if count]
            level = sum(state.daily[index] for index in seen_bins) / len(seen_bins)
            for index in seen_bins:
                state.daily[index] -= level
            state.profile_level = level
            state.profile_ready = True
        return
    daily = state.daily[daily_bin] if state.daily_seen[daily_bin] else 0.0
    # The weekly correction enters the daily profile's targets only while it is the forecaster in use:
    # for a series without a weekly cycle it is noise, and must not leak into the daily profile.
    weekly = state.weekly[weekly_bin] if weekly_bin is not None and chosen == _WEEKLY else 0.0
    # The profiles are offsets from a level that changes slowly (about a day), so that the recent level
    # cannot absorb the daily shape while it is being learnt.
    level = state.profile_level if state.profile_level is not None else value - daily - weekly
    level += _clip(value - daily - weekly - level, 3 * limit) / per_day
    state.profile_level = level
    if not state.daily_seen[daily_bin]:
        state.daily[daily_bin] = value - level - weekly
    else:
        rate = _visit_rate(params.profile_rate, SECONDS_PER_DAY / len(state.daily), state.spacing)
        state.daily[daily_bin] += rate * _clip(value - level - weekly - daily, limit)
    state.daily_seen[daily_bin] = min(state.daily_seen[daily_bin] + 1, 255)
    if weekly_bin is None or not state.daily_seen[daily_bin]:
        return
    # What the daily profile leaves over, averaged per hour of the week: a running mean over the first
    # values of the bin, then the same rate per cycle as the daily profile.
    visits = state.weekly_seen[weekly_bin] + 1
    rate = max(_visit_rate(params.profile_rate, SECONDS_PER_WEEK / len(state.weekly), state.spacing), 1.0 / visits)
    leftover = value - level - state.daily[daily_bin] - state.weekly[weekly_bin]
    state.weekly[weekly_bin] += rate * _clip(leftover, limit)
    state.weekly_seen[weekly_bin] = min(visits, 255)


def _weekly_established(state: SeriesState) -> bool:
    age = (state.last_time or 0.0) - (state.first_time or 0.0)
    return bool(state.weekly) and age >= 2 * SECONDS_PER_WEEK - SECONDS_PER_WEEK / len(state.weekly)


def _visit_rate(rate_per_period: float, bin_seconds: float, spacing: float | None) -> float:
    """The learning rate per value that gives ``rate_per_period`` per cycle when a bin gets several values a cycle."""
    visits = max(1.0, bin_seconds / (spacing or bin_seconds))
    return rate_per_period if visits <= 1.0 else 1.0 - (1.0 - rate_per_period) ** (1.0 / visits)


def _remember_level_before(
    state: SeriesState,
    surprise: float,
    forecasts: list[float],
    offsets: tuple[float, float, float],
    params: ModelParams,
) -> None:
    """Keep the recent level from before a run of unusual values, until ``return_memory_days`` after it."""
    if surprise >= params.rebase_surprise:
        if state.level_before_left <= 0:  # the run starts: the forecasts have not learnt from it yet
            state.level_before = [forecast - offset for forecast, offset in zip(forecasts, offsets, strict=True)]
        per_day = _values_per_day(state)
        state.level_before_left = max(1, round(params.return_memory_days * per_day))
    else:
        state.level_before_left = max(0, state.level_before_left - 1)


def _maybe_rebase(state: SeriesState, shift_surprise: float, baseline_is_worse: bool, params: ModelParams) -> None:
    """Accept a lasting change: after ``rebase_points`` unusual shifts in a row, the baseline jumps to it."""
    if shift_surprise >= params.rebase_surprise and baseline_is_worse:
        state.rebase_run += 1
    else:
        state.rebase_run = 0
    if state.rebase_run >= params.rebase_points:
        state.slow_level = [
            statistics.median(recent) if recent else level
            for recent, level in zip(state.recent, state.slow_level, strict=True)
        ]
        state.rebase_run = 0
