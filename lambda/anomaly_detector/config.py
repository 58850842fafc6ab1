"""Detector settings, and the Lambda's environment parsed and validated once at cold start."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from anomaly_detector.metric_set import Measure, MetricSet, MetricSetError, parse_dimensions, parse_measures
from anomaly_detector.partitions import MAX_PARTITIONS

# Chosen on the development set (see the README's "Streaming detector"): the best single threshold.
DEFAULT_SEVERITY_THRESHOLD = 47.6
# Until the alerts settings land (streaming.alert_min_severity): a group alerts from this severity.
DEFAULT_ALERT_MIN_SEVERITY = 70.0


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class DetectorSettings:
    """How intervals are read and judged; shared by the Lambda and the local mode."""

    # The metric set. These defaults (one dimension, one measure) serve tests and the backtest; the Lambda
    # always gets DIMENSIONS/MEASURES from streaming.dimensions/measures (views+revenue by platform x marketplace).
    dimensions: tuple[str, ...] = ("marketplace",)
    timestamp_column: str = "event_time"
    measures: tuple[Measure, ...] = (Measure("views", "sum"),)
    frequency_minutes: int = 5
    # The severity (0-100) at which an anomaly opens; see anomaly_detector.series_model.
    anomaly_threshold: float = DEFAULT_SEVERITY_THRESHOLD
    # Intervals re-read from the stored files to rebuild a lost state (or catch up missed runs), and
    # intervals after which a dimension value that stopped appearing is forgotten.
    history_length: int = 288
    # A new anomaly group alerts when its severity reaches this (streaming.alert_min_severity).
    alert_min_severity: float = DEFAULT_ALERT_MIN_SEVERITY

    def __post_init__(self) -> None:
        if self.frequency_minutes not in (5, 10):
            raise ValueError("frequency_minutes must be 5 or 10")
        if not (math.isfinite(self.anomaly_threshold) and 0 < self.anomaly_threshold <= 100):
            raise ValueError("anomaly_threshold must be a severity in (0, 100]")
        if self.history_length < 8:
            raise ValueError("history_length must be at least 8")
        if not (math.isfinite(self.alert_min_severity) and 0 < self.alert_min_severity <= 100):
            raise ValueError("alert_min_severity must be a severity in (0, 100]")
        if not self.timestamp_column:
            raise ValueError("the timestamp column must be named")
        MetricSet(self.dimensions, self.measures)  # raises MetricSetError (a ValueError) when inconsistent

    @property
    def metric_set(self) -> MetricSet:
        return MetricSet(self.dimensions, self.measures)


@dataclass(frozen=True)
class DetectorConfig:
    data_bucket: str
    intervals_prefix: str
    anomalies_prefix: str
    state_key: str
    topic_arn: str
    metric_namespace: str
    settings: DetectorSettings
    # Feedback labels (anomaly_detector.feedback) and the optional function alerted besides the topic.
    feedback_prefix: str = "feedback/"
    alert_lambda_arn: str | None = None
    # Where the detector keeps one compact aggregate per interval read (anomaly_detector.history); None: none kept.
    aggregates_prefix: str | None = None
    # The partitioned fan-out (anomaly_detector.fanout): hash partitions, and where their verdict files go.
    partitions: int = 1
    scores_prefix: str | None = None


def load_config(env: Mapping[str, str]) -> DetectorConfig:
    """Build the config from environment variables, naming the first bad one in the error."""
    frequency = _int(env, "FREQUENCY_MINUTES")
    if frequency not in (5, 10):
        raise ConfigError(f"FREQUENCY_MINUTES must be 5 or 10, got {frequency}")
    threshold = _float(env, "ANOMALY_THRESHOLD")
    if not 0 < threshold <= 100:
        raise ConfigError(f"ANOMALY_THRESHOLD must be a severity in (0, 100], got {threshold}")
    history_length = _int(env, "HISTORY_LENGTH")
    if history_length < 8:
        raise ConfigError(f"HISTORY_LENGTH must be at least 8, got {history_length}")
    alert_min_severity = _float(env, "ALERT_MIN_SEVERITY") if env.get("ALERT_MIN_SEVERITY", "").strip() else None
    if alert_min_severity is not None and not 0 < alert_min_severity <= 100:
        raise ConfigError(f"ALERT_MIN_SEVERITY must be a severity in (0, 100], got {alert_min_severity}")
    try:
        dimensions = parse_dimensions(_required(env, "DIMENSIONS"))
        measures = parse_measures(_required(env, "MEASURES"))
        MetricSet(dimensions, measures)
    except MetricSetError as error:
        raise ConfigError(str(error)) from None
    topic_arn = _required(env, "TOPIC_ARN")
    if not topic_arn.startswith("arn:"):
        raise ConfigError(f"TOPIC_ARN must be an ARN, got {topic_arn!r}")
    alert_lambda_arn = env.get("ALERT_LAMBDA_ARN", "").strip() or None
    if alert_lambda_arn is not None and not (alert_lambda_arn.startswith("arn:") and ":function:" in alert_lambda_arn):
        raise ConfigError(f"ALERT_LAMBDA_ARN must be a Lambda function ARN, got {alert_lambda_arn!r}")
    partitions = _int(env, "PARTITIONS") if env.get("PARTITIONS", "").strip() else 1
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ConfigError(f"PARTITIONS must be 1..{MAX_PARTITIONS}, got {partitions}")
    if partitions > 1 and not env.get("SCORES_PREFIX", "").strip():
        raise ConfigError("environment variable SCORES_PREFIX is required when PARTITIONS > 1")
    return DetectorConfig(
        partitions=partitions,
        scores_prefix=_prefix(env, "SCORES_PREFIX") if env.get("SCORES_PREFIX", "").strip() else None,
        data_bucket=_required(env, "DATA_BUCKET"),
        intervals_prefix=_prefix(env, "INTERVALS_PREFIX"),
        anomalies_prefix=_prefix(env, "ANOMALIES_PREFIX"),
        state_key=_required(env, "STATE_KEY"),
        topic_arn=topic_arn,
        metric_namespace=_required(env, "METRIC_NAMESPACE"),
        feedback_prefix=_prefix(env, "FEEDBACK_PREFIX"),
        alert_lambda_arn=alert_lambda_arn,
        aggregates_prefix=_prefix(env, "AGGREGATES_PREFIX") if env.get("AGGREGATES_PREFIX", "").strip() else None,
        settings=DetectorSettings(
            dimensions=dimensions,
            timestamp_column=_required(env, "TIMESTAMP_COLUMN"),
            measures=measures,
            frequency_minutes=frequency,
            anomaly_threshold=threshold,
            history_length=history_length,
            alert_min_severity=DEFAULT_ALERT_MIN_SEVERITY if alert_min_severity is None else alert_min_severity,
        ),
    )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def _prefix(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    # Prefixes are joined with partition paths, so they must end in exactly one slash.
    return value.rstrip("/") + "/"


def _int(env: Mapping[str, str], name: str) -> int:
    raw = _required(env, name)
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str) -> float:
    raw = _required(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value
