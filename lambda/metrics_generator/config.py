"""The generator Lambda's environment, parsed and validated once at cold start."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from metrics_generator.records import InjectedAnomaly


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class GeneratorConfig:
    stream_name: str
    records_per_invocation: int = 500
    anomaly_target: InjectedAnomaly | None = None  # None: no anomaly injected
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

    anomaly_target = parse_anomaly_target(env.get("ANOMALY_TARGET", "").strip())

    raw_window = env.get("WINDOW_MINUTES", "").strip() or "1"
    try:
        window_minutes = int(raw_window)
    except ValueError:
        raise ConfigError(f"WINDOW_MINUTES must be an integer, got {raw_window!r}") from None
    if not 1 <= window_minutes <= 60:
        raise ConfigError(f"WINDOW_MINUTES must be 1..60, got {window_minutes}")

    return GeneratorConfig(stream_name, records_per_invocation, anomaly_target, window_minutes)


def parse_anomaly_target(text: str) -> InjectedAnomaly | None:
    """``ANOMALY_TARGET``: empty (no anomaly) or the JSON of ``streaming.anomaly_target``, e.g.
    ``{"measure": "revenue", "dimensions": {"platform": "web", "marketplace": "de"}, "factor": 0.2}``."""
    if not text or text == "null":
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError(f"ANOMALY_TARGET must be empty or a JSON object, got {text!r}") from None
    shape_ok = (
        isinstance(raw, dict)
        and set(raw) <= {"measure", "dimensions", "factor"}
        and isinstance(raw.get("measure"), str)
        and isinstance(raw.get("dimensions", {}), dict)
        and all(isinstance(value, str) for value in raw.get("dimensions", {}).values())
        and isinstance(raw.get("factor"), int | float)
        and not isinstance(raw.get("factor"), bool)
    )
    if not shape_ok:
        raise ConfigError(
            'ANOMALY_TARGET must be {"measure": <name>, "dimensions": {<dimension>: <value>}, "factor": <number>}, '
            f"got {text!r}"
        )
    factor = float(raw["factor"])
    if not math.isfinite(factor) or factor <= 0 or factor == 1:
        raise ConfigError(f"ANOMALY_TARGET factor must be a finite number > 0 and not 1, got {raw['factor']!r}")
    try:
        return InjectedAnomaly(measure=raw["measure"], dimensions=raw.get("dimensions", {}), factor=factor)
    except ValueError as error:
        raise ConfigError(f"ANOMALY_TARGET: {error}") from None
