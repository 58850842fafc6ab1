"""The generator Lambda's environment, parsed and validated once at cold start."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from metrics_generator.records import MARKETPLACES


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class GeneratorConfig:
    stream_name: str
    records_per_invocation: int = 500
    anomaly_marketplace: str | None = None  # None: no anomaly injected
    anomaly_factor: float = 1.0
    # The schedule's rate: each run covers the window that ends at the event's time.
    window_minutes: int = 1


def load_config(env: Mapping[str, str]) -> GeneratorConfig:
    stream_name = env.get("STREAM_NAME", "").strip()
    if not stream_name:
        raise ConfigError("environment variable STREAM_NAME is required")

    raw_count = env.get("RECORDS_PER_INVOCATION", "").strip() or "500"
    try:
        records_per_invocation = int(raw_count)
    except ValueError:
        raise ConfigError(f"RECORDS_PER_INVOCATION must be an integer, got {raw_count!r}") from None
    if not 1 <= records_per_invocation <= 10_000:
        raise ConfigError(f"RECORDS_PER_INVOCATION must be 1..10000, got {records_per_invocation}")

    anomaly_marketplace = env.get("ANOMALY_MARKETPLACE", "").strip() or None
    known = sorted(m.name for m in MARKETPLACES)
    if anomaly_marketplace is not None and anomaly_marketplace not in known:
        raise ConfigError(f"ANOMALY_MARKETPLACE must be empty or one of {known}, got {anomaly_marketplace!r}")

    raw_factor = env.get("ANOMALY_FACTOR", "").strip() or "1.0"
    try:
        anomaly_factor = float(raw_factor)
    except ValueError:
        raise ConfigError(f"ANOMALY_FACTOR must be a number, got {raw_factor!r}") from None
    if not (math.isfinite(anomaly_factor) and anomaly_factor >= 0):
        raise ConfigError(f"ANOMALY_FACTOR must be a finite number >= 0, got {raw_factor!r}")

    raw_window = env.get("WINDOW_MINUTES", "").strip() or "1"
    try:
        window_minutes = int(raw_window)
    except ValueError:
        raise ConfigError(f"WINDOW_MINUTES must be an integer, got {raw_window!r}") from None
    if not 1 <= window_minutes <= 60:
        raise ConfigError(f"WINDOW_MINUTES must be 1..60, got {window_minutes}")

    return GeneratorConfig(stream_name, records_per_invocation, anomaly_marketplace, anomaly_factor, window_minutes)
