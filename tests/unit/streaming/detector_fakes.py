"""Collecting fakes of the detector's publisher and metrics sink (a module of its own: test files import them,
and `conftest` is not a unique module name across the test tree)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class CollectingPublisher:
    messages: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, subject: str, message: str) -> None:
        self.messages.append((subject, message))


@dataclass
class CollectingMetrics:
    calls: list[tuple[dict[str, float], datetime]] = field(default_factory=list)
    by_measure: list[dict[str, dict[str, float]]] = field(default_factory=list)

    def put_metrics(
        self,
        values: Mapping[str, float],
        timestamp: datetime,
        *,
        by_measure: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.calls.append((dict(values), timestamp))
        self.by_measure.append({measure: dict(v) for measure, v in (by_measure or {}).items()})
