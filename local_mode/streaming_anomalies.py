"""The local run's schedule of injected anomalies: which measure, which combination, when and how much.

Each :class:`ScheduledAnomaly` is placed relative to the simulation's start and becomes one of the generator's
:class:`metrics_generator.records.InjectedAnomaly` (with an absolute window) through :func:`injected_anomalies`.
The generator multiplies the targeted measure only, in the records whose dimensions match (a subset of the
dimensions hits every value of the others), so each entry says where the detector's group should find the root
cause. :data:`LOCAL_SCHEDULE` is the default run's schedule; :func:`single_spike` is the older one-spike run
(``--stream-anomaly-hour``).

The default 48-hour run gives the detector 30 hours of history first (its seasonal model needs a day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metrics_generator.records import InjectedAnomaly


@dataclass(frozen=True)
class ScheduledAnomaly:
    """``measure`` x ``factor`` in the records matching ``dimensions``, from ``start`` to ``end`` after the start
    of the simulation."""

    label: str
    measure: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    start: timedelta = timedelta(0)
    end: timedelta = timedelta(0)
    factor: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "dimensions", dict(self.dimensions))
        if not timedelta(0) <= self.start < self.end:
            raise ValueError(f"{self.label}: the window must start at or after 0 and end after it starts")
        if not self.factor > 0 or self.factor == 1:
            raise ValueError(f"{self.label}: factor must be > 0 and not 1, got {self.factor}")

    def window(self, stream_start: datetime) -> tuple[datetime, datetime]:
        return stream_start + self.start, stream_start + self.end

    @property
    def where(self) -> str:
        """The targeted combination as people read it: ``web/de``, ``android/*`` (``*``: every value)."""
        platform = self.dimensions.get("platform", "*")
        marketplace = self.dimensions.get("marketplace", "*")
        others = [f"{name}={value}" for name, value in self.dimensions.items() if name not in _PLATFORM_MARKETPLACE]
        return "/".join([platform, marketplace, *others])


_PLATFORM_MARKETPLACE = ("platform", "marketplace")


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


LOCAL_SCHEDULE: tuple[ScheduledAnomaly, ...] = (
    # One combination, one measure, about an hour: the group's root cause is web/de, views stay as they are.
    ScheduledAnomaly(
        "revenue drop in web/de",
        "revenue",
        {"platform": "web", "marketplace": "de"},
        start=_hours(30),
        end=_hours(31),
        factor=0.2,
    ),
    # A short spike: two 5-minute intervals (one 10-minute interval).
    ScheduledAnomaly(
        "views spike in ios/us",
        "views",
        {"platform": "ios", "marketplace": "us"},
        start=_hours(36),
        end=_hours(36) + timedelta(minutes=10),
        factor=3.0,
    ),
    # Spread over every marketplace of one platform: -30 % in each android combination, within the noise of the
    # small ones (android/br is ~1.6 % of the traffic), plain at the platform roll-up android/* (20 % of it).
    ScheduledAnomaly(
        "views drop on android, every marketplace",
        "views",
        {"platform": "android"},
        start=_hours(42),
        end=_hours(43),
        factor=0.7,
    ),
)


def single_spike(anomaly_hour: float, duration: timedelta = timedelta(minutes=30)) -> tuple[ScheduledAnomaly, ...]:
    """The one-spike run of ``--stream-anomaly-hour``: views x4 in every platform of ``de`` for 30 minutes."""
    if anomaly_hour < 0:
        return ()
    start = _hours(anomaly_hour)
    return (ScheduledAnomaly("views spike in de", "views", {"marketplace": "de"}, start, start + duration, 4.0),)


def within_run(
    schedule: Iterable[ScheduledAnomaly], stream_start: datetime, stream_end: datetime
) -> list[ScheduledAnomaly]:
    """The entries that start before the run ends (an entry that would end after the run is cut at its end)."""
    return [anomaly for anomaly in schedule if stream_start + anomaly.start < stream_end]


def injected_anomalies(
    schedule: Iterable[ScheduledAnomaly], stream_start: datetime, stream_end: datetime
) -> tuple[InjectedAnomaly, ...]:
    """The generator's anomalies (absolute windows, cut at the run's end) for the entries within the run."""
    from metrics_generator.records import InjectedAnomaly

    injected = []
    for anomaly in within_run(schedule, stream_start, stream_end):
        start, end = anomaly.window(stream_start)
        injected.append(
            InjectedAnomaly(
                measure=anomaly.measure,
                dimensions=anomaly.dimensions,
                factor=anomaly.factor,
                window=(start, min(end, stream_end)),
                label=anomaly.label,
            )
        )
    return tuple(injected)
