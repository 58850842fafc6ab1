"""Pure generation of synthetic e-commerce events.

Each record is a small batch of page views from one (platform, marketplace) pair:
``{"platform", "marketplace", "event_time", "views", "revenue"}``.

The number of records is fixed by ``records_per_minute`` (what the Lambda can afford to write);
seasonality and anomalies live in how many views each record carries, so the per-marketplace
sum of ``views`` over an interval follows :func:`expected_views_per_minute` plus noise.
Nothing here touches AWS, the clock or global randomness: callers pass the time window and a
seeded :class:`random.Random`, which makes a simulated stream reproducible interval by interval.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EVENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Marketplace:
    name: str
    share: float  # fraction of all records that come from this marketplace
    utc_offset_hours: float  # seasonality follows the shoppers' local clock
    revenue_per_view: float  # USD, before noise


@dataclass(frozen=True)
class Platform:
    name: str
    share: float


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace("us", 0.36, -5.0, 0.045),
    Marketplace("uk", 0.14, 0.0, 0.040),
    Marketplace("de", 0.13, 1.0, 0.038),
    Marketplace("jp", 0.16, 9.0, 0.035),
    Marketplace("in", 0.13, 5.5, 0.010),
    Marketplace("br", 0.08, -3.0, 0.015),
)
PLATFORMS: tuple[Platform, ...] = (
    Platform("web", 0.5),
    Platform("ios", 0.3),
    Platform("android", 0.2),
)


@dataclass(frozen=True)
class GeneratorSettings:
    """How much traffic to simulate and which anomaly (if any) to inject.

    ``anomaly_window`` of ``None`` means the anomaly applies at all times (how the Lambda uses it);
    a local simulation passes ``(start, end)`` to place it at a known moment.
    """

    records_per_minute: int = 500
    mean_views_per_record: float = 20.0
    daily_amplitude: float = 0.6  # 0.6 → peak is 4x the trough
    peak_local_hour: float = 20.0  # evening shopping peak; trough 12 hours earlier
    minute_noise: float = 0.03  # sigma of the per-(marketplace, minute) lognormal wobble
    anomaly_marketplace: str | None = None
    anomaly_factor: float = 1.0
    anomaly_window: tuple[datetime, datetime] | None = None

    def __post_init__(self) -> None:
        if self.records_per_minute < 0:
            raise ValueError("records_per_minute must be >= 0")
        if not 0 <= self.daily_amplitude < 1:
            raise ValueError("daily_amplitude must be in [0, 1)")
        if self.minute_noise < 0:
            raise ValueError("minute_noise must be >= 0")
        if self.anomaly_factor < 0:
            raise ValueError("anomaly_factor must be >= 0")
        known = {m.name for m in MARKETPLACES}
        if self.anomaly_marketplace is not None and self.anomaly_marketplace not in known:
            raise ValueError(f"anomaly_marketplace must be one of {sorted(known)}, got {self.anomaly_marketplace!r}")


def marketplace_named(name: str) -> Marketplace:
    for marketplace in MARKETPLACES:
        if marketplace.name == name:
            return marketplace
    raise KeyError(name)


def seasonal_factor(marketplace: Marketplace, at: datetime, settings: GeneratorSettings) -> float:
    """Daily cycle in the marketplace's local time: 1 + A*cos(2pi(hour - peak)/24), mean 1."""
    local = _as_utc(at) + timedelta(hours=marketplace.utc_offset_hours)
    local_hour = local.hour + local.minute / 60 + local.second / 3600
    return 1.0 + settings.daily_amplitude * math.cos(2 * math.pi * (local_hour - settings.peak_local_hour) / 24)


def anomaly_multiplier(marketplace_name: str, at: datetime, settings: GeneratorSettings) -> float:
    if settings.anomaly_marketplace != marketplace_name:
        return 1.0
    if settings.anomaly_window is not None:
        window_start, window_end = settings.anomaly_window
        if not _as_utc(window_start) <= _as_utc(at) < _as_utc(window_end):
            return 1.0
    return settings.anomaly_factor


def expected_views_per_minute(marketplace_name: str, at: datetime, settings: GeneratorSettings) -> float:
    """Noise-free level of the ``views`` measure for a marketplace (all platforms) at ``at``."""
    marketplace = marketplace_named(marketplace_name)
    return (
        settings.records_per_minute
        * marketplace.share
        * settings.mean_views_per_record
        * seasonal_factor(marketplace, at, settings)
        * anomaly_multiplier(marketplace_name, at, settings)
    )


def rng_for_interval(seed: int, interval_start: datetime) -> random.Random:
    """A generator seeded by (seed, interval) so any interval can be regenerated on its own."""
    # String seeds are hashed with SHA-512 by `random`, so this is stable across processes.
    return random.Random(f"{seed}:{_as_utc(interval_start).isoformat()}")


def generate_records(
    start: datetime,
    end: datetime,
    rng: random.Random,
    settings: GeneratorSettings,
    count: int | None = None,
) -> list[dict[str, str | int | float]]:
    """Records with ``event_time`` uniformly spread over ``[start, end)``.

    ``count`` defaults to ``records_per_minute`` x the window's length in minutes.
    """
    start, end = _as_utc(start), _as_utc(end)
    span_seconds = (end - start).total_seconds()
    if span_seconds <= 0:
        raise ValueError("end must be after start")
    if count is None:
        count = round(settings.records_per_minute * span_seconds / 60)
    if count < 0:
        raise ValueError("count must be >= 0")

    cells = [(m, p) for m in MARKETPLACES for p in PLATFORMS]
    # Factors change slowly, so they are evaluated once per (marketplace, minute); the small
    # per-minute wobble makes the series over-dispersed like real traffic, not purely Poisson.
    factor_cache: dict[tuple[str, int], float] = {}
    records: list[dict[str, str | int | float]] = []
    for (marketplace, platform), offset in zip(
        _allocate_cells(cells, count, rng),
        sorted(rng.random() * span_seconds for _ in range(count)),
        strict=True,
    ):
        event_time = start + timedelta(seconds=offset)
        minute_key = (marketplace.name, int(event_time.timestamp()) // 60)
        factor = factor_cache.get(minute_key)
        if factor is None:
            factor = (
                seasonal_factor(marketplace, event_time, settings)
                * anomaly_multiplier(marketplace.name, event_time, settings)
                * rng.lognormvariate(0.0, settings.minute_noise)
            )
            factor_cache[minute_key] = factor
        views = _poisson(rng, settings.mean_views_per_record * factor)
        revenue = views * marketplace.revenue_per_view * rng.lognormvariate(0.0, 0.25)
        records.append(
            {
                "platform": platform.name,
                "marketplace": marketplace.name,
                "event_time": event_time.strftime(EVENT_TIME_FORMAT),
                "views": views,
                "revenue": round(revenue, 2),
            }
        )
    return records


def _allocate_cells(
    cells: list[tuple[Marketplace, Platform]], count: int, rng: random.Random
) -> list[tuple[Marketplace, Platform]]:
    """Each cell gets its share of ``count`` (±1, systematic sampling), in random order.

    Independent weighted draws would add multinomial noise that swamps small marketplaces.
    """
    weights = [m.share * p.share for m, p in cells]
    total = sum(weights)
    allocated: list[tuple[Marketplace, Platform]] = []
    cumulative, offset = 0.0, rng.random()
    for cell, weight in zip(cells, weights, strict=True):
        upper = cumulative + weight / total * count
        allocated.extend([cell] * (math.floor(upper + offset) - math.floor(cumulative + offset)))
        cumulative = upper
    rng.shuffle(allocated)
    return allocated


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        # Normal approximation: exact sampling is needlessly slow at these means.
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    # Knuth's method is fine for small means.
    limit, product, k = math.exp(-mean), rng.random(), 0
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC, aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
