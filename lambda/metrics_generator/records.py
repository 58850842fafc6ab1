"""Pure generation of synthetic e-commerce events.

Each record is a small batch of page views from one (platform, marketplace) pair:
``{"platform", "marketplace", "event_time", "views", "revenue"}``.

The number of records is fixed by ``records_per_minute`` (what the Lambda can afford to write);
seasonality lives in how many views each record carries, so the per-marketplace sum of ``views``
over an interval follows :func:`expected_views_per_minute` plus noise. Revenue follows the record's views.

Injected anomalies (:class:`InjectedAnomaly`) target one measure in the records that match their dimensions
(a combination such as web/de, or a subset such as every marketplace of android) and multiply that measure
only: a revenue anomaly leaves views alone, and a views anomaly leaves revenue alone. The random draws do not
depend on the anomalies, so a stream with an anomaly equals the stream without it outside the targeted cells.
Nothing here touches AWS, the clock or global randomness: callers pass the time window and a
seeded :class:`random.Random`, which makes a simulated stream reproducible interval by interval.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
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


# The measures each record carries, and the values of each dimension the generator produces.
MEASURES: tuple[str, ...] = ("views", "revenue")
DIMENSION_VALUES: dict[str, tuple[str, ...]] = {
    "platform": tuple(p.name for p in PLATFORMS),
    "marketplace": tuple(m.name for m in MARKETPLACES),
}


@dataclass(frozen=True)
class InjectedAnomaly:
    """Multiply ``measure`` by ``factor`` in every record whose dimensions match ``dimensions``.

    ``dimensions`` may name a subset (``{"platform": "android"}`` hits every marketplace of android; ``{}`` hits
    everything). ``window`` of ``None`` means at all times (how the Lambda uses it); a local simulation passes
    ``(start, end)`` to place it at a known moment. ``label`` is for people.
    """

    measure: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    factor: float = 1.0
    window: tuple[datetime, datetime] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", dict(self.dimensions))
        if self.measure not in MEASURES:
            raise ValueError(f"anomaly measure must be one of {list(MEASURES)}, got {self.measure!r}")
        for name, value in self.dimensions.items():
            if name not in DIMENSION_VALUES:
                raise ValueError(f"anomaly dimension must be one of {list(DIMENSION_VALUES)}, got {name!r}")
            if value not in DIMENSION_VALUES[name]:
                raise ValueError(f"anomaly {name} must be one of {list(DIMENSION_VALUES[name])}, got {value!r}")
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"anomaly factor must be a finite number > 0, got {self.factor!r}")
        if self.window is not None and not _as_utc(self.window[0]) < _as_utc(self.window[1]):
            raise ValueError(f"anomaly window must end after it starts, got {self.window!r}")

    def applies(self, measure: str, platform: str, marketplace: str, at: datetime) -> bool:
        if measure != self.measure:
            return False
        cell = {"platform": platform, "marketplace": marketplace}
        if any(cell[name] != value for name, value in self.dimensions.items()):
            return False
        if self.window is not None:
            window_start, window_end = self.window
            return _as_utc(window_start) <= _as_utc(at) < _as_utc(window_end)
        return True


@dataclass(frozen=True)
class GeneratorSettings:
    """How much traffic to simulate and which anomalies (if any) to inject."""

    records_per_minute: int = 500
    mean_views_per_record: float = 20.0
    daily_amplitude: float = 0.6  # 0.6 → peak is 4x the trough
    peak_local_hour: float = 20.0  # evening shopping peak; trough 12 hours earlier
    minute_noise: float = 0.03  # sigma of the per-(marketplace, minute) lognormal wobble
    anomalies: tuple[InjectedAnomaly, ...] = ()

    def __post_init__(self) -> None:
        if self.records_per_minute < 0:
            raise ValueError("records_per_minute must be >= 0")
        if not 0 <= self.daily_amplitude < 1:
            raise ValueError("daily_amplitude must be in [0, 1)")
        if self.minute_noise < 0:
            raise ValueError("minute_noise must be >= 0")
        object.__setattr__(self, "anomalies", tuple(self.anomalies))


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


def anomaly_multiplier(
    measure: str, platform_name: str, marketplace_name: str, at: datetime, settings: GeneratorSettings
) -> float:
    """The product of the factors of every injected anomaly on this measure and cell at ``at`` (1.0: none)."""
    multiplier = 1.0
    for anomaly in settings.anomalies:
        if anomaly.applies(measure, platform_name, marketplace_name, at):
            multiplier *= anomaly.factor
    return multiplier


def expected_views_per_minute(
    marketplace_name: str, at: datetime, settings: GeneratorSettings, platform_name: str | None = None
) -> float:
    """Noise-free level of the ``views`` measure for a marketplace (all platforms, or one) at ``at``."""
    marketplace = marketplace_named(marketplace_name)
    platforms = [p for p in PLATFORMS if platform_name in (None, p.name)]
    if not platforms:
        raise KeyError(platform_name)
    total_share = sum(p.share for p in PLATFORMS)
    platform_weight = sum(
        p.share / total_share * anomaly_multiplier("views", p.name, marketplace_name, at, settings) for p in platforms
    )
    return (
        settings.records_per_minute
        * marketplace.share
        * settings.mean_views_per_record
        * seasonal_factor(marketplace, at, settings)
        * platform_weight
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
            factor = seasonal_factor(marketplace, event_time, settings) * rng.lognormvariate(
                0.0, settings.minute_noise
            )
            factor_cache[minute_key] = factor
        views = _poisson(rng, settings.mean_views_per_record * factor)
        # Revenue follows the record's own (organic) views; each measure then gets its own anomalies only.
        revenue = views * marketplace.revenue_per_view * rng.lognormvariate(0.0, 0.25)
        if settings.anomalies:
            views_factor = anomaly_multiplier("views", platform.name, marketplace.name, event_time, settings)
            views = views if views_factor == 1.0 else round(views * views_factor)
            revenue *= anomaly_multiplier("revenue", platform.name, marketplace.name, event_time, settings)
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
