"""A synthetic month of NYC yellow-taxi trips in the TLC CSV layout, with known anomalies.

Trip counts per half hour follow a daily rhythm (morning and evening peaks, a deep night trough), a
weekly one (quieter weekend mornings, busier weekend nights) and Poisson noise. Four anomalies of the
kinds a level-only model misses are injected at known times (see :func:`default_anomalies`):

* a **holiday**: a weekday that runs on the weekend's daily shape (no rush hours, busier night);
* a **storm**: a whole day at well under half the usual level;
* a **disruption**: a few hours of one afternoon with most trips gone;
* a **spike**: one hour with about three times the usual trips (an event letting out).

Everything is vectorised numpy and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

TLC_YELLOW_COLUMNS: tuple[str, ...] = (
    "VendorID",
    "tpep_pickup_datetime",
    "tpep_dropoff_datetime",
    "passenger_count",
    "trip_distance",
    "RatecodeID",
    "store_and_fwd_flag",
    "PULocationID",
    "DOLocationID",
    "payment_type",
    "fare_amount",
    "extra",
    "mta_tax",
    "tip_amount",
    "tolls_amount",
    "improvement_surcharge",
    "total_amount",
    "congestion_surcharge",
    "airport_fee",
)
WINDOW_MINUTES = 30
DEFAULT_MONTH_START = datetime(2025, 3, 1, tzinfo=UTC)
DEFAULT_DAYS = 31
DEFAULT_TRIPS = 300_000
# A small share of TLC rows has no passenger_count; the prep job drops and counts them.
MISSING_PASSENGER_SHARE = 0.002
_PASSENGER_COUNTS = np.array([1, 2, 3, 4, 5, 6])
_PASSENGER_WEIGHTS = np.array([0.70, 0.15, 0.05, 0.03, 0.04, 0.03])
# Relative trips per hour of a weekday (NYC-like: 5 am trough, 8 am and 6-7 pm peaks).
_WEEKDAY_HOURLY = np.array(
    [
        0.45,
        0.30,
        0.20,
        0.14,
        0.12,
        0.18,
        0.45,
        0.80,
        1.00,
        0.95,
        0.85,
        0.85,
        0.90,
        0.90,
        0.95,
        1.00,
        1.05,
        1.15,
        1.25,
        1.20,
        1.05,
        0.95,
        0.85,
        0.65,
    ]
)
_WEEKEND_HOURLY = np.array(
    [
        0.80,
        0.65,
        0.50,
        0.35,
        0.22,
        0.15,
        0.18,
        0.28,
        0.40,
        0.55,
        0.70,
        0.80,
        0.85,
        0.88,
        0.90,
        0.90,
        0.92,
        0.95,
        1.00,
        1.00,
        0.98,
        0.95,
        0.92,
        0.88,
    ]
)


HOLIDAY = "holiday"
STORM = "storm"
DISRUPTION = "disruption"
SPIKE = "spike"
ANOMALY_KINDS = (HOLIDAY, STORM, DISRUPTION, SPIKE)


@dataclass(frozen=True)
class KnownAnomaly:
    """An injected anomaly: in [start, end) trips are scaled by `factor`, or (a holiday) follow the weekend shape."""

    kind: str
    label: str
    start: datetime
    end: datetime
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {self.kind!r}; choose from {', '.join(ANOMALY_KINDS)}")
        if self.end <= self.start:
            raise ValueError(f"anomaly {self.label!r} ends before it starts")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def describe(self) -> str:
        span = f"{self.start:%a %Y-%m-%d %H:%M}-{self.end:%H:%M}"
        if self.end - self.start == timedelta(days=1) and self.start.hour == 0:
            span = f"{self.start:%a %Y-%m-%d} (all day)"
        change = "weekend shape on a weekday" if self.kind == HOLIDAY else f"trips x{self.factor:g}"
        return f"{self.label}: {span}, {change}"


@dataclass(frozen=True)
class GeneratedTrips:
    path: Path
    rows: int
    anomalies: tuple[KnownAnomaly, ...]
    first_window: datetime
    windows: int


def _weekday_at_or_after(day: datetime, month_end: datetime) -> datetime:
    """The first Monday-Friday at or after `day` (the last weekday of the month when none is left)."""
    candidate = day
    while candidate.weekday() >= 5 and candidate + timedelta(days=1) < month_end:
        candidate += timedelta(days=1)
    while candidate.weekday() >= 5:
        candidate -= timedelta(days=1)
    return candidate


def default_anomalies(
    month_start: datetime = DEFAULT_MONTH_START, days: int = DEFAULT_DAYS
) -> tuple[KnownAnomaly, ...]:
    """The four kinds, on weekdays spread over the month (for March 2025: the 6th, 12th, 18th and 26th).

    Each sits in a different week and away from the others, so each can be told apart from the rest.
    """
    if days < 14:
        raise ValueError(f"the injected anomalies need at least 14 days of data, got {days}")
    month_end = month_start + timedelta(days=days)

    def weekday(fraction: float) -> datetime:
        return _weekday_at_or_after(month_start + timedelta(days=round(fraction * days)), month_end)

    spike_day, holiday, storm, disruption_day = weekday(0.16), weekday(0.36), weekday(0.55), weekday(0.82)
    return (
        KnownAnomaly(SPIKE, "short spike", spike_day + timedelta(hours=22), spike_day + timedelta(hours=23), 3.0),
        KnownAnomaly(HOLIDAY, "holiday", holiday, holiday + timedelta(days=1)),
        KnownAnomaly(STORM, "day-long storm", storm, storm + timedelta(days=1), 0.45),
        KnownAnomaly(
            DISRUPTION,
            "afternoon disruption",
            disruption_day + timedelta(hours=12),
            disruption_day + timedelta(hours=17),
            0.3,
        ),
    )


def expected_trips_per_window(
    month_start: datetime, days: int, total_trips: int, anomalies: tuple[KnownAnomaly, ...]
) -> np.ndarray:
    """Mean trips of every half-hour window of the month, anomalies included."""
    windows = days * 24 * 60 // WINDOW_MINUTES
    window_hours = np.arange(windows) * WINDOW_MINUTES / 60
    hour_of_day = (window_hours % 24).astype(int)
    weekday = (month_start.weekday() + (window_hours // 24).astype(int)) % 7
    is_weekend = weekday >= 5
    holiday = np.zeros(windows, dtype=bool)
    for anomaly in anomalies:
        if anomaly.kind == HOLIDAY:
            holiday[_window_range(anomaly, month_start, windows)] = True
    shape = np.where(is_weekend | holiday, _WEEKEND_HOURLY[hour_of_day], _WEEKDAY_HOURLY[hour_of_day])
    # Fridays and Saturdays run late; a slow drift over the month keeps the series from repeating exactly.
    shape = shape * np.where((weekday >= 4) & (hour_of_day >= 20), 1.15, 1.0)
    shape = shape * (1.0 + 0.04 * np.sin(2 * np.pi * window_hours / (24 * days)))
    # Scaled to the total the month would have without anomalies, so they change the total as they would.
    ordinary = np.where(is_weekend, _WEEKEND_HOURLY[hour_of_day], _WEEKDAY_HOURLY[hour_of_day])
    ordinary = ordinary * np.where((weekday >= 4) & (hour_of_day >= 20), 1.15, 1.0)
    ordinary = ordinary * (1.0 + 0.04 * np.sin(2 * np.pi * window_hours / (24 * days)))
    rates = shape / ordinary.sum() * total_trips
    for anomaly in anomalies:
        if anomaly.kind != HOLIDAY:
            rates[_window_range(anomaly, month_start, windows)] *= anomaly.factor
    return rates


def _window_range(anomaly: KnownAnomaly, month_start: datetime, windows: int) -> slice:
    window_seconds = WINDOW_MINUTES * 60
    first = int((anomaly.start - month_start).total_seconds() // window_seconds)
    last = int((anomaly.end - month_start).total_seconds() // window_seconds)
    return slice(min(max(first, 0), windows), min(max(last, 0), windows))


@dataclass(frozen=True)
class WindowCounts:
    """Passengers per half hour of a generated month, without writing trips: for tests and the bench."""

    window_starts: tuple[datetime, ...]
    passengers: np.ndarray
    anomalies: tuple[KnownAnomaly, ...]

    def window_range(self, anomaly: KnownAnomaly) -> range:
        window_slice = _window_range(anomaly, self.window_starts[0], len(self.window_starts))
        return range(window_slice.start, window_slice.stop)


def passengers_per_window(
    *,
    seed: int = 7,
    total_trips: int = DEFAULT_TRIPS,
    month_start: datetime = DEFAULT_MONTH_START,
    days: int = DEFAULT_DAYS,
    anomalies: tuple[KnownAnomaly, ...] | None = None,
) -> WindowCounts:
    """The half-hour sums :func:`generate_trips` would lead to: Poisson trips, TLC-like passengers per trip.

    Same model and distributions, drawn directly per window (missing passenger counts are left out: the
    prep job drops those rows), so it is not the same random draw as the trip file for a seed.
    """
    anomalies = default_anomalies(month_start, days) if anomalies is None else anomalies
    rng = np.random.default_rng(seed)
    rates = expected_trips_per_window(month_start, days, total_trips, anomalies)
    trips_per_window = rng.poisson(rates)
    passengers = rng.choice(_PASSENGER_COUNTS, size=int(trips_per_window.sum()), p=_PASSENGER_WEIGHTS)
    kept = rng.random(len(passengers)) >= MISSING_PASSENGER_SHARE
    window_of_trip = np.repeat(np.arange(len(rates)), trips_per_window)
    sums = np.bincount(window_of_trip[kept], weights=passengers[kept], minlength=len(rates)).astype(np.int64)
    starts = tuple(month_start + timedelta(minutes=WINDOW_MINUTES * index) for index in range(len(rates)))
    return WindowCounts(window_starts=starts, passengers=sums, anomalies=anomalies)


def generate_trips(
    folder: Path,
    *,
    seed: int = 7,
    total_trips: int = DEFAULT_TRIPS,
    month_start: datetime = DEFAULT_MONTH_START,
    days: int = DEFAULT_DAYS,
    anomalies: tuple[KnownAnomaly, ...] | None = None,
) -> GeneratedTrips:
    """Write `yellow_tripdata_<yyyy-mm>.csv` under `folder` and describe what was injected."""
    anomalies = default_anomalies(month_start, days) if anomalies is None else anomalies
    rng = np.random.default_rng(seed)
    rates = expected_trips_per_window(month_start, days, total_trips, anomalies)
    trips_per_window = rng.poisson(rates)
    rows = int(trips_per_window.sum())
    window_seconds = WINDOW_MINUTES * 60
    month_epoch = int(month_start.timestamp())
    pickup_epoch = (
        month_epoch
        + np.repeat(np.arange(len(rates)), trips_per_window) * window_seconds
        + rng.integers(0, window_seconds, size=rows)
    )
    pickup_epoch.sort()
    distance = np.round(rng.lognormal(mean=0.6, sigma=0.75, size=rows), 2)
    duration_seconds = (distance * rng.uniform(150, 330, size=rows) + rng.integers(60, 300, size=rows)).astype(np.int64)
    passengers = rng.choice(_PASSENGER_COUNTS, size=rows, p=_PASSENGER_WEIGHTS).astype(np.float64)
    passengers[rng.random(rows) < MISSING_PASSENGER_SHARE] = np.nan
    fare = np.round(3.0 + 2.5 * distance + 0.6 * duration_seconds / 60, 2)
    tip = np.round(np.where(rng.random(rows) < 0.7, fare * rng.uniform(0.1, 0.25, size=rows), 0.0), 2)
    tolls = np.where(rng.random(rows) < 0.05, 6.94, 0.0)
    congestion = np.full(rows, 2.5)
    airport_fee = np.where(rng.random(rows) < 0.08, 1.75, 0.0)
    total = np.round(fare + 1.0 + 0.5 + tip + tolls + 1.0 + congestion + airport_fee, 2)

    columns = {
        "VendorID": rng.choice([1, 2], size=rows, p=[0.3, 0.7]),
        "tpep_pickup_datetime": _as_wall_clock(pickup_epoch),
        "tpep_dropoff_datetime": _as_wall_clock(pickup_epoch + duration_seconds),
        # TLC CSVs write counts as integers and leave missing ones empty.
        "passenger_count": pa.array(passengers, mask=np.isnan(passengers)).cast(pa.int64()),
        "trip_distance": distance,
        "RatecodeID": rng.choice([1, 2, 5], size=rows, p=[0.95, 0.04, 0.01]),
        "store_and_fwd_flag": np.where(rng.random(rows) < 0.01, "Y", "N"),
        "PULocationID": rng.integers(1, 264, size=rows),
        "DOLocationID": rng.integers(1, 264, size=rows),
        "payment_type": rng.choice([1, 2], size=rows, p=[0.75, 0.25]),
        "fare_amount": fare,
        "extra": np.full(rows, 1.0),
        "mta_tax": np.full(rows, 0.5),
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": np.full(rows, 1.0),
        "total_amount": total,
        "congestion_surcharge": congestion,
        "airport_fee": airport_fee,
    }
    assert tuple(columns) == TLC_YELLOW_COLUMNS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"yellow_tripdata_{month_start:%Y-%m}.csv"
    table = pa.table(
        {name: pa.array(values) if not isinstance(values, pa.Array) else values for name, values in columns.items()}
    )
    with path.open("wb") as csv_file:
        # TLC headers are bare names; pyarrow would quote them.
        csv_file.write((",".join(TLC_YELLOW_COLUMNS) + "\n").encode())
        pa_csv.write_csv(table, csv_file, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    return GeneratedTrips(path=path, rows=rows, anomalies=anomalies, first_window=month_start, windows=len(rates))


def _as_wall_clock(epoch_seconds: np.ndarray) -> pa.Array:
    """`yyyy-MM-dd HH:mm:ss` strings, as TLC CSVs carry them (no zone)."""
    return pa.array(epoch_seconds.astype("datetime64[s]")).cast(pa.string())
