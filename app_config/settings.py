"""Typed configuration for one deployment environment.

`cdk.json` context holds a dict of named environments; `app.py` picks one and
calls :func:`load_environment` once. Everything below `app.py` receives these
frozen dataclasses as constructor arguments and never reads context, env vars
or AWS itself, which keeps synth pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

CompletionMode = Literal["poll", "events"]
StreamMode = Literal["ON_DEMAND", "PROVISIONED"]
# When the streaming job should be running: always, only while the generator's schedule is enabled, or daily hours.
JobRunMode = Literal["always", "with_generator", "active_hours"]
# How a measure is summed over an interval and a dimension combination (Lookout for Metrics' SUM and COUNT).
MeasureAggregation = Literal["sum", "count"]

_GLUE_WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "Z.2X")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
# Worker types a Glue Spark streaming job accepts; G.025X (0.25 DPU) exists for low-volume streaming only.
_GLUE_STREAMING_WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X")
_JOB_RUN_MODES = ("always", "with_generator", "active_hours")
# botocore's Glue model: MaintenanceWindow pattern ^(Sun|Mon|Tue|Wed|Thu|Fri|Sat):([01]?[0-9]|2[0-3])$ (GMT).
_MAINTENANCE_WINDOW = re.compile(r"^(Sun|Mon|Tue|Wed|Thu|Fri|Sat):([01]?[0-9]|2[0-3])$")
# Glue's Kinesis "startingPosition": latest, trim_horizon, earliest, or a UTC timestamp yyyy-mm-ddTHH:MM:SSZ
# (or with an offset such as -04:00; Glue 4.0 or later).
_STARTING_POSITION = re.compile(
    r"^(?i:latest|trim_horizon|earliest)$|^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"
)
# arn:<partition>:kinesis:<region>:<account>:stream/<name>; stream names are 1-128 of [a-zA-Z0-9_.-].
_KINESIS_STREAM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):kinesis:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):stream/[A-Za-z0-9_.-]{1,128}$"
)
# A key ARN (not an alias: IAM grants on a key need its key ARN).
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[A-Za-z0-9-]{1,128}$")
# A Lambda function ARN, optionally with a version or alias (Lambda's Invoke FunctionName pattern, full-ARN form;
# function names are 1-64 of [a-zA-Z0-9-_]).
_LAMBDA_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:[A-Za-z0-9_-]{1,64}"
    r"(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names it."""


# Lookout for Metrics allowed up to 5 measures and 5 dimensions per metric set; so does this detector.
MAX_MEASURES = 5
MAX_DIMENSIONS = 5
# A column name the ETL, the CSV header and the series keys can carry unquoted (no '|', '=', '*' or ',').
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# What the synthetic generator (lambda/metrics_generator/records.py) produces; a unit test keeps these in step.
GENERATOR_MEASURES = ("views", "revenue")
GENERATOR_DIMENSION_VALUES: dict[str, tuple[str, ...]] = {
    "platform": ("web", "ios", "android"),
    "marketplace": ("us", "uk", "de", "jp", "in", "br"),
}


@dataclass(frozen=True)
class AnomalyTarget:
    """``streaming.anomaly_target``: the generator multiplies ``measure`` by ``factor`` in the records whose
    dimensions match ``dimensions`` (a subset of ``streaming.dimensions``; ``()`` matches every record)."""

    measure: str
    dimensions: tuple[tuple[str, str], ...] = ()
    factor: float = 1.0

    def as_json(self) -> str:
        """The generator Lambda's ``ANOMALY_TARGET`` environment value."""
        return json.dumps(
            {"measure": self.measure, "dimensions": dict(self.dimensions), "factor": self.factor},
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class MeasureSpec:
    """One watched measure: a numeric event field (``sum``) or the number of events (``count``)."""

    name: str
    aggregation: MeasureAggregation = "sum"


# AWS's guidance for a queue that feeds Lambda: "set the maxReceiveCount on the source queue's redrive
# policy to at least 5" (Lambda Developer Guide, "Using Lambda with Amazon SQS").
MIN_MAX_RECEIVE_COUNT = 5
# The handler starts a record only with this much of its invocation left (lambda/callback_handler).
HANDLER_SECONDS_PER_RECORD = 20


@dataclass(frozen=True)
class DataPrepConfig:
    dlq_max_receive_count: int = 5
    handler_timeout_seconds: int = 60
    glue_worker_type: str = "G.1X"
    glue_number_of_workers: int = 2
    glue_timeout_minutes: int = 60
    poll_interval_seconds: int = 15
    first_poll_seconds: int = 5
    task_cpu: int = 256
    task_memory_mib: int = 512
    completion: CompletionMode = "poll"
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    queue_kms: bool = False
    handler_batch_size: int = 1
    callback_deadline_minutes: int = 180
    callback_alarm_minutes: int = 120
    reconcile_every_minutes: int = 5
    callback_record_ttl_days: int = 30
    # The new VPC's two AZs, e.g. ["us-east-1a", "us-east-1b"]; empty: CloudFormation's Fn::GetAZs picks them
    # at deploy. Either way synth makes no availability-zone lookup, so it needs no credentials.
    availability_zones: tuple[str, ...] = ()

    def validate(self) -> None:
        _require(
            MIN_MAX_RECEIVE_COUNT <= self.dlq_max_receive_count <= 1000,
            f"data_prep.dlq_max_receive_count must be {MIN_MAX_RECEIVE_COUNT}..1000 "
            "(AWS: at least 5 for a queue that feeds Lambda)",
        )
        _require(3 <= self.handler_timeout_seconds <= 900, "data_prep.handler_timeout_seconds must be 3..900")
        _require(1 <= self.handler_batch_size <= 10, "data_prep.handler_batch_size must be 1..10")
        _require(
            self.handler_batch_size * HANDLER_SECONDS_PER_RECORD <= self.handler_timeout_seconds,
            f"data_prep.handler_batch_size x {HANDLER_SECONDS_PER_RECORD}s (one record's worst case) must fit in "
            f"handler_timeout_seconds ({self.handler_batch_size} x {HANDLER_SECONDS_PER_RECORD}s > "
            f"{self.handler_timeout_seconds}s): lower the batch size or raise the timeout",
        )
        _require(
            self.callback_deadline_minutes > self.glue_timeout_minutes,
            "data_prep.callback_deadline_minutes must be longer than glue_timeout_minutes",
        )
        _require(
            0 < self.callback_alarm_minutes < self.callback_deadline_minutes,
            "data_prep.callback_alarm_minutes must be between 0 and callback_deadline_minutes",
        )
        _require(1 <= self.reconcile_every_minutes <= 60, "data_prep.reconcile_every_minutes must be 1..60")
        _require(1 <= self.callback_record_ttl_days <= 3650, "data_prep.callback_record_ttl_days must be 1..3650")
        _require(
            self.glue_worker_type in _GLUE_WORKER_TYPES,
            f"data_prep.glue_worker_type must be one of {', '.join(_GLUE_WORKER_TYPES)}",
        )
        _require(self.glue_number_of_workers >= 2, "data_prep.glue_number_of_workers must be at least 2")
        _require(1 <= self.poll_interval_seconds <= 300, "data_prep.poll_interval_seconds must be 1..300")
        _require(0 <= self.first_poll_seconds <= 300, "data_prep.first_poll_seconds must be 0..300")
        _require(self.completion in ("poll", "events"), "data_prep.completion must be 'poll' or 'events'")
        _require(
            (self.vpc_id is None) == (not self.subnet_ids),
            "data_prep.vpc_id and data_prep.subnet_ids must be given together (or neither)",
        )
        _require(
            not self.availability_zones or len(self.availability_zones) == 2,
            "data_prep.availability_zones must name two zones (the task's VPC spans two), or be empty",
        )


@dataclass(frozen=True)
class PipelineConfig:
    training_instance_type: str = "ml.m5.large"
    training_instance_count: int = 1
    transform_instance_type: str = "ml.m5.large"
    # Small samples keep RCF from masking an anomaly that spans many windows (a storm is 48 of them); more
    # trees keep the scores, and so the cut-off, steady from one training run to the next.
    num_samples_per_tree: int = 64
    num_trees: int = 200
    schedule: str | None = None

    def validate(self) -> None:
        _require(self.training_instance_count >= 1, "pipeline.training_instance_count must be >= 1")
        # RCF's documented valid values (RCF Hyperparameters): num_samples_per_tree 1..2048, num_trees 50..1000.
        _require(1 <= self.num_samples_per_tree <= 2048, "pipeline.num_samples_per_tree must be 1..2048")
        _require(50 <= self.num_trees <= 1000, "pipeline.num_trees must be 50..1000")
        for name in ("training_instance_type", "transform_instance_type"):
            _require(getattr(self, name).startswith("ml."), f"pipeline.{name} must start with 'ml.'")
        if self.schedule is not None:
            _require(
                self.schedule.startswith(("rate(", "cron(")),
                "pipeline.schedule must be an EventBridge rate(...) or cron(...) expression",
            )


@dataclass(frozen=True)
class StreamingConfig:
    generator_rate_minutes: int = 1
    generator_enabled: bool = True
    records_per_invocation: int = 500
    stream_mode: StreamMode = "ON_DEMAND"
    shard_count: int = 1
    glue_worker_type: str = "G.1X"
    glue_number_of_workers: int = 2
    window_size_seconds: int = 60
    frequency_minutes: int = 5
    dimension_column: str = "marketplace"
    timestamp_column: str = "event_time"
    measure_column: str = "views"
    # The metric set (Lookout for Metrics' terms): every measure is watched for every combination of
    # dimension values, and for each dimension's roll-up. Defaults: the reference schema
    # platform, marketplace, event_time, views, revenue.
    measures: tuple[MeasureSpec, ...] = (MeasureSpec("views", "sum"), MeasureSpec("revenue", "sum"))
    dimensions: tuple[str, ...] = ("platform", "marketplace")
    detector_offset_minutes: int = 2
    # Severity (0-100) at which the detector opens an anomaly; the default is the detector's own
    # (anomaly_detector.config.DEFAULT_SEVERITY_THRESHOLD, chosen on the development set; see the README).
    anomaly_threshold: float = 47.6
    history_length: int = 288
    # Inject a spike (factor > 1) or drop (< 1) into one measure of the generated events: None, or
    # {"measure": "revenue", "dimensions": {"platform": "web", "marketplace": "de"}, "factor": 0.2}.
    anomaly_target: AnomalyTarget | None = None
    # An existing Kinesis Data Stream to read instead of the one the storage stack creates (same account and region).
    source_stream_arn: str | None = None
    source_stream_kms_key_arn: str | None = None
    source_starting_position: str = "TRIM_HORIZON"
    job_run_mode: JobRunMode = "with_generator"
    job_active_hours_utc: tuple[int, int] | None = None
    job_max_retries: int = 1
    batch_max_retries: int = 3
    job_failure_limit: int = 5
    job_failure_window_hours: int = 6
    supervisor_interval_minutes: int = 5
    maintenance_window: str = "Sun:03"
    # Alerts: a group alerts once, when its severity (0-100) first reaches this; optionally also to a Lambda.
    alert_min_severity: float = 70.0
    alert_lambda_arn: str | None = None
    # The detector Lambda's size, and the hash partitions its series are split into (1: all in one state file;
    # see lambda/anomaly_detector/partitions.py and the README's "Scale").
    detector_memory_mb: int = 1024
    detector_timeout_seconds: int = 120
    detector_partitions: int = 1

    def validate(self) -> None:
        _require(self.frequency_minutes in (5, 10), "streaming.frequency_minutes must be 5 or 10")
        _require(
            self.stream_mode in ("ON_DEMAND", "PROVISIONED"), "streaming.stream_mode must be ON_DEMAND or PROVISIONED"
        )
        _require(self.shard_count >= 1, "streaming.shard_count must be >= 1")
        _require(1 <= self.generator_rate_minutes <= 60, "streaming.generator_rate_minutes must be 1..60")
        _require(1 <= self.records_per_invocation <= 10000, "streaming.records_per_invocation must be 1..10000")
        _require(
            self.glue_worker_type in _GLUE_STREAMING_WORKER_TYPES,
            f"streaming.glue_worker_type must be one of {', '.join(_GLUE_STREAMING_WORKER_TYPES)} (streaming jobs)",
        )
        _require(self.glue_number_of_workers >= 2, "streaming.glue_number_of_workers must be at least 2")
        _require(1 <= self.window_size_seconds <= 3600, "streaming.window_size_seconds must be 1..3600")
        _require(
            0 < self.detector_offset_minutes < self.frequency_minutes,
            "streaming.detector_offset_minutes must be between 0 and frequency_minutes",
        )
        _require(0 < self.anomaly_threshold <= 100, "streaming.anomaly_threshold must be a severity in (0, 100]")
        _require(8 <= self.history_length <= 10000, "streaming.history_length must be 8..10000")
        _require(
            isinstance(self.alert_min_severity, int | float) and 0 < self.alert_min_severity <= 100,
            f"streaming.alert_min_severity must be a severity in (0, 100], got {self.alert_min_severity!r}",
        )
        _require(
            self.alert_lambda_arn is None or bool(_LAMBDA_FUNCTION_ARN.match(str(self.alert_lambda_arn))),
            "streaming.alert_lambda_arn must be a Lambda function ARN "
            f"(arn:aws:lambda:<region>:<account>:function:<name>), got {self.alert_lambda_arn!r}",
        )
        self._validate_metric_set()
        self._validate_anomaly_target()
        self._validate_source()
        self._validate_job_control()
        self._validate_detector_scale()

    def _validate_detector_scale(self) -> None:
        # Lambda's limits: 128 MB to 10,240 MB of memory, a timeout of up to 900 seconds.
        _require(128 <= self.detector_memory_mb <= 10240, "streaming.detector_memory_mb must be 128..10240")
        _require(
            1 <= self.detector_timeout_seconds <= min(900, 60 * self.frequency_minutes),
            "streaming.detector_timeout_seconds must be 1..900 and at most one interval (frequency_minutes x 60): "
            "runs are one at a time, so a longer run would delay the next interval's",
        )
        _require(1 <= self.detector_partitions <= 64, "streaming.detector_partitions must be 1..64")
        # > 1: a Step Functions fan-out over the partitions (cdk_constructs/detector_fanout.py, README 'Scale').

    def _validate_metric_set(self) -> None:
        _require(
            1 <= len(self.measures) <= MAX_MEASURES,
            f"streaming.measures must list 1..{MAX_MEASURES} measures, got {len(self.measures)}",
        )
        _require(
            1 <= len(self.dimensions) <= MAX_DIMENSIONS,
            f"streaming.dimensions must list 1..{MAX_DIMENSIONS} columns, got {len(self.dimensions)}",
        )
        for position, measure in enumerate(self.measures):
            _require(
                bool(_COLUMN_NAME.match(measure.name)),
                f"streaming.measures[{position}].name must be a column name (letters, digits, '_'; "
                f"not starting with a digit), got {measure.name!r}",
            )
            _require(
                measure.aggregation in ("sum", "count"),
                f"streaming.measures[{position}].aggregation must be 'sum' or 'count', got {measure.aggregation!r}",
            )
        for position, dimension in enumerate(self.dimensions):
            _require(
                bool(_COLUMN_NAME.match(dimension)),
                f"streaming.dimensions[{position}] must be a column name (letters, digits, '_'; "
                f"not starting with a digit), got {dimension!r}",
            )
        names = [m.name for m in self.measures]
        duplicated = sorted(
            {n for n in names if names.count(n) > 1} | {d for d in self.dimensions if self.dimensions.count(d) > 1}
        )
        _require(not duplicated, f"streaming.measures/dimensions name {', '.join(duplicated)} more than once")
        overlap = sorted(set(names) & set(self.dimensions))
        _require(not overlap, f"streaming.measures and streaming.dimensions both name {', '.join(overlap)}")
        taken = sorted({self.timestamp_column} & (set(names) | set(self.dimensions)))
        _require(
            not taken, f"streaming.timestamp_column {self.timestamp_column!r} cannot also be a measure or dimension"
        )

    def _validate_anomaly_target(self) -> None:
        target = self.anomaly_target
        if target is None:
            return
        where = "streaming.anomaly_target"
        measures = {m.name: m.aggregation for m in self.measures}
        _require(
            target.measure in measures,
            f"{where}.measure must be one of streaming.measures ({', '.join(measures)}), got {target.measure!r}",
        )
        names = [name for name, _ in target.dimensions]
        _require(len(set(names)) == len(names), f"{where}.dimensions names a dimension more than once: {names}")
        for name, value in target.dimensions:
            _require(
                name in self.dimensions,
                f"{where}.dimensions names {name!r}, which is not in streaming.dimensions "
                f"({', '.join(self.dimensions)})",
            )
            _require(bool(value.strip()), f"{where}.dimensions.{name} must be a non-empty value")
        factor = target.factor
        _require(
            factor == factor and factor not in (float("inf"), 1.0) and factor > 0,
            f"{where}.factor must be a number > 0 and not 1 (> 1 a spike, < 1 a drop), got {factor!r}",
        )
        if not self.generator_enabled:
            return
        # The generator can only scale what it produces.
        _require(
            target.measure in GENERATOR_MEASURES,
            f"{where}.measure {target.measure!r} is not produced by the generator "
            f"({', '.join(GENERATOR_MEASURES)})",
        )
        _require(
            measures[target.measure] == "sum",
            f"{where}.measure {target.measure!r} is aggregated by count, which a scaled value does not change; "
            "target a sum measure",
        )
        for name, value in target.dimensions:
            known = GENERATOR_DIMENSION_VALUES.get(name)
            _require(
                known is not None,
                f"{where}.dimensions.{name}: the generator does not produce {name!r} "
                f"(it produces {', '.join(GENERATOR_DIMENSION_VALUES)})",
            )
            assert known is not None
            _require(
                value in known,
                f"{where}.dimensions.{name} must be one of the generator's values ({', '.join(known)}), got {value!r}",
            )

    def _validate_source(self) -> None:
        if self.source_stream_arn is not None:
            _require(
                bool(_KINESIS_STREAM_ARN.match(self.source_stream_arn)),
                f"streaming.source_stream_arn must be a Kinesis stream ARN "
                f"(arn:aws:kinesis:<region>:<account>:stream/<name>), got {self.source_stream_arn!r}",
            )
            _require(
                not self.generator_enabled,
                "streaming.generator_enabled must be false when streaming.source_stream_arn is set "
                "(the generator would write synthetic events into your stream)",
            )
            _require(
                self.job_run_mode != "with_generator",
                "streaming.job_run_mode 'with_generator' needs the generator; with streaming.source_stream_arn "
                "use 'always' or 'active_hours'",
            )
        if self.source_stream_kms_key_arn is not None:
            _require(
                self.source_stream_arn is not None,
                "streaming.source_stream_kms_key_arn is only used with streaming.source_stream_arn",
            )
            _require(
                bool(_KMS_KEY_ARN.match(self.source_stream_kms_key_arn)),
                f"streaming.source_stream_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>),"
                f" got {self.source_stream_kms_key_arn!r}",
            )
        _require(
            bool(_STARTING_POSITION.match(self.source_starting_position)),
            "streaming.source_starting_position must be TRIM_HORIZON, LATEST, EARLIEST or a UTC timestamp "
            f"such as 2026-11-25T08:00:00Z, got {self.source_starting_position!r}",
        )

    def _validate_job_control(self) -> None:
        _require(
            self.job_run_mode in _JOB_RUN_MODES,
            f"streaming.job_run_mode must be one of {', '.join(_JOB_RUN_MODES)}, got {self.job_run_mode!r}",
        )
        hours = self.job_active_hours_utc
        if self.job_run_mode == "active_hours":
            _require(
                hours is not None
                and len(hours) == 2
                and all(isinstance(hour, int) and 0 <= hour <= 23 for hour in hours)
                and hours[0] != hours[1],
                "streaming.job_active_hours_utc must be [start_hour, end_hour] (UTC, 0-23, different; "
                f"[22, 6] spans midnight) when streaming.job_run_mode is 'active_hours', got {hours!r}",
            )
        else:
            _require(
                hours is None,
                "streaming.job_active_hours_utc is only used when streaming.job_run_mode is 'active_hours'",
            )
        _require(0 <= self.job_max_retries <= 10, "streaming.job_max_retries must be 0..10")
        _require(0 <= self.batch_max_retries <= 10, "streaming.batch_max_retries must be 0..10")
        _require(1 <= self.job_failure_limit <= 100, "streaming.job_failure_limit must be 1..100")
        _require(1 <= self.job_failure_window_hours <= 168, "streaming.job_failure_window_hours must be 1..168")
        _require(1 <= self.supervisor_interval_minutes <= 60, "streaming.supervisor_interval_minutes must be 1..60")
        _require(
            bool(_MAINTENANCE_WINDOW.match(self.maintenance_window)),
            f"streaming.maintenance_window must be <Day>:<hour> in GMT such as 'Sun:03' (days Sun..Sat, "
            f"hours 0-23), got {self.maintenance_window!r}",
        )


@dataclass(frozen=True)
class ApprovalConfig:
    """The ApproveResults step: who is asked, how long a request lives, the endpoint's capacity."""

    approver_emails: tuple[str, ...] = ()
    expires_hours: int = 72
    expiry_check_minutes: int = 15
    endpoint_reserved_concurrency: int = 5
    dlq_max_receive_count: int = MIN_MAX_RECEIVE_COUNT

    def validate(self) -> None:
        # A callback step waits at most 7 days for its answer (README: verified only on AWS), so the
        # request must expire, and fail the step with a reason, before SageMaker times it out.
        _require(
            1 <= self.expires_hours <= 7 * 24 - 1,
            "approval.expires_hours must be 1..167 (a callback step waits at most 7 days)",
        )
        _require(1 <= self.expiry_check_minutes <= 60, "approval.expiry_check_minutes must be 1..60")
        _require(
            1 <= self.endpoint_reserved_concurrency <= 100, "approval.endpoint_reserved_concurrency must be 1..100"
        )
        _require(
            MIN_MAX_RECEIVE_COUNT <= self.dlq_max_receive_count <= 1000,
            f"approval.dlq_max_receive_count must be {MIN_MAX_RECEIVE_COUNT}..1000 (AWS: at least 5 for a queue "
            "that feeds Lambda)",
        )
        for email in self.approver_emails:
            _require(
                re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) is not None,
                f"approval.approver_emails: {email!r} is not an e-mail address",
            )


@dataclass(frozen=True)
class OperationsConfig:
    alarm_email: str | None = None


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything one environment (dev, prod, ...) deploys with."""

    name: str
    account: str | None
    region: str
    destroy_data_with_stack: bool
    termination_protection: bool
    log_retention_days: int
    data_prep: DataPrepConfig
    pipeline: PipelineConfig
    streaming: StreamingConfig
    operations: OperationsConfig
    approval: ApprovalConfig = ApprovalConfig()

    def stack_name(self, purpose: str) -> str:
        return stack_name(self.name, purpose)

    @property
    def pipeline_name(self) -> str:
        """AWS::SageMaker::Pipeline requires a name; the queue policy scopes SageMaker's sends to it."""
        return f"taxi-anomaly-{self.name}"

    @property
    def model_package_group_name(self) -> str:
        """AWS::SageMaker::ModelPackageGroup requires a name; the pipeline's Register step names it."""
        return f"taxi-anomaly-{self.name}"


def stack_name(env_name: str, purpose: str) -> str:
    """Stack names carry the environment so dev and prod can share an account (the CLI finds stacks by it)."""
    return f"taxi-anomaly-{env_name}-{purpose}"


def _require_stream_in_environment(streaming: StreamingConfig, *, region: str, account: str | None) -> None:
    """An existing stream (and the alert function) must be where the job (the detector) runs, with its role."""
    for setting, arn, pattern in (
        ("source_stream_arn", streaming.source_stream_arn, _KINESIS_STREAM_ARN),
        ("source_stream_kms_key_arn", streaming.source_stream_kms_key_arn, _KMS_KEY_ARN),
        ("alert_lambda_arn", streaming.alert_lambda_arn, _LAMBDA_FUNCTION_ARN),
    ):
        match = pattern.match(arn) if arn else None
        if match is None:
            continue
        _require(
            match["region"] == region,
            f"streaming.{setting} is in region {match['region']}, but this environment deploys to {region}",
        )
        _require(
            account is None or match["account"] == account,
            f"streaming.{setting} is in account {match['account']}, but this environment deploys to {account} "
            "(cross-account streams, keys and alert functions are not supported)",
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _section(cls: type, raw: Mapping[str, Any] | None, where: str) -> Any:
    raw = dict(raw or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    replaced = sorted({"anomaly_marketplace", "anomaly_factor"} & set(unknown))
    if cls is StreamingConfig and replaced:
        raise ConfigError(
            f"{where}: {', '.join(replaced)} replaced by anomaly_target, e.g. "
            '{"measure": "views", "dimensions": {"marketplace": "de"}, "factor": 4.0}'
        )
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    for name in ("subnet_ids", "availability_zones", "approver_emails"):
        if name in raw:
            raw[name] = tuple(raw[name] or ())
    if raw.get("job_active_hours_utc") is not None:
        raw["job_active_hours_utc"] = tuple(raw["job_active_hours_utc"])
    if "dimensions" in raw:
        _require(
            isinstance(raw["dimensions"], list) and all(isinstance(d, str) for d in raw["dimensions"]),
            f"{where}.dimensions must be a list of column names, got {raw['dimensions']!r}",
        )
        raw["dimensions"] = tuple(raw["dimensions"])
    if "measures" in raw:
        raw["measures"] = _measures(raw["measures"], f"{where}.measures")
    if raw.get("anomaly_target") is not None:
        raw["anomaly_target"] = _anomaly_target(raw["anomaly_target"], f"{where}.anomaly_target")
    section = cls(**raw)
    if hasattr(section, "validate"):
        section.validate()
    return section


def _anomaly_target(raw: Any, where: str) -> AnomalyTarget:
    shape = '{"measure": <measure>, "dimensions": {<dimension>: <value>, ...}, "factor": <number>}'
    _require(
        isinstance(raw, Mapping) and set(raw) <= {"measure", "dimensions", "factor"},
        f"{where} must be null or {shape}, got {raw!r}",
    )
    _require(isinstance(raw.get("measure"), str), f"{where}.measure must be a measure name, got {raw.get('measure')!r}")
    dimensions = raw.get("dimensions", {})
    _require(
        isinstance(dimensions, Mapping) and all(isinstance(v, str) for v in dimensions.values()),
        f"{where}.dimensions must map dimension names to values (text), got {dimensions!r}",
    )
    factor = raw.get("factor")
    _require(
        isinstance(factor, int | float) and not isinstance(factor, bool),
        f"{where}.factor must be a number (> 1 a spike, < 1 a drop), got {factor!r}",
    )
    return AnomalyTarget(measure=raw["measure"], dimensions=tuple(dimensions.items()), factor=float(factor))


def _measures(raw: Any, where: str) -> tuple[MeasureSpec, ...]:
    _require(isinstance(raw, list), f"{where} must be a list of {{name, aggregation}}, got {raw!r}")
    measures = []
    for position, item in enumerate(raw):
        _require(
            isinstance(item, Mapping) and set(item) <= {"name", "aggregation"} and isinstance(item.get("name"), str),
            f'{where}[{position}] must be {{"name": <column>, "aggregation": "sum"|"count"}}, got {item!r}',
        )
        measures.append(MeasureSpec(name=item["name"], aggregation=item.get("aggregation", "sum")))
    return tuple(measures)


def load_environment(
    environments: Mapping[str, Any],
    name: str,
    *,
    default_account: str | None = None,
    default_region: str | None = None,
) -> EnvironmentConfig:
    """Parse the named environment from the `environments` context block.

    `default_account`/`default_region` are what `app.py` read from
    CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION; the environment's own values win.
    """
    if not environments:
        raise ConfigError("cdk.json context has no 'environments' block")
    if name not in environments:
        raise ConfigError(f"unknown environment {name!r}; valid environments: {', '.join(sorted(environments))}")
    if not _ENV_NAME.match(name):
        raise ConfigError(f"environment name {name!r} must be lowercase letters, digits and '-', at most 16 characters")
    raw = dict(environments[name])
    region = raw.get("region") or default_region
    if not region:
        raise ConfigError(f"environment {name!r} has no region and CDK_DEFAULT_REGION is not set")
    retention = int(raw.get("log_retention_days", 14))
    _require(retention > 0, "log_retention_days must be positive")
    data_prep = _section(DataPrepConfig, raw.get("data_prep"), f"{name}.data_prep")
    foreign = [zone for zone in data_prep.availability_zones if not zone.startswith(region)]
    _require(not foreign, f"{name}.data_prep.availability_zones {', '.join(foreign)} are not in region {region}")
    streaming = _section(StreamingConfig, raw.get("streaming"), f"{name}.streaming")
    _require_stream_in_environment(streaming, region=region, account=raw.get("account") or default_account)
    return EnvironmentConfig(
        name=name,
        account=raw.get("account") or default_account,
        region=region,
        destroy_data_with_stack=bool(raw.get("destroy_data_with_stack", False)),
        termination_protection=bool(raw.get("termination_protection", True)),
        log_retention_days=retention,
        data_prep=data_prep,
        pipeline=_section(PipelineConfig, raw.get("pipeline"), f"{name}.pipeline"),
        streaming=streaming,
        operations=_section(OperationsConfig, raw.get("operations"), f"{name}.operations"),
        approval=_section(ApprovalConfig, raw.get("approval"), f"{name}.approval"),
    )
