"""Typed configuration for one deployment environment.

`cdk.json` context holds a dict of named environments; `app.py` picks one and
calls :func:`load_environment` once. Everything below `app.py` receives these
frozen dataclasses as constructor arguments and never reads context, env vars
or AWS itself, which keeps synth pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

CompletionMode = Literal["poll", "events"]
StreamMode = Literal["ON_DEMAND", "PROVISIONED"]

_GLUE_WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "Z.2X")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names it."""


@dataclass(frozen=True)
class DataPrepConfig:
    dlq_max_receive_count: int = 3
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

    def validate(self) -> None:
        _require(1 <= self.dlq_max_receive_count <= 1000, "data_prep.dlq_max_receive_count must be 1..1000")
        _require(3 <= self.handler_timeout_seconds <= 900, "data_prep.handler_timeout_seconds must be 3..900")
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


@dataclass(frozen=True)
class PipelineConfig:
    shingle_size: int = 48
    training_instance_type: str = "ml.m5.large"
    training_instance_count: int = 1
    transform_instance_type: str = "ml.m5.large"
    num_samples_per_tree: int = 200
    num_trees: int = 50
    schedule: str | None = None

    def validate(self) -> None:
        _require(1 <= self.shingle_size <= 1000, "pipeline.shingle_size must be 1..1000")
        _require(self.training_instance_count >= 1, "pipeline.training_instance_count must be >= 1")
        _require(10 <= self.num_samples_per_tree <= 2048, "pipeline.num_samples_per_tree must be 10..2048")
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
    detector_offset_minutes: int = 2
    anomaly_threshold: float = 3.0
    history_length: int = 288
    anomaly_marketplace: str | None = None
    anomaly_factor: float = 1.0

    def validate(self) -> None:
        _require(self.frequency_minutes in (5, 10), "streaming.frequency_minutes must be 5 or 10")
        _require(
            self.stream_mode in ("ON_DEMAND", "PROVISIONED"), "streaming.stream_mode must be ON_DEMAND or PROVISIONED"
        )
        _require(self.shard_count >= 1, "streaming.shard_count must be >= 1")
        _require(1 <= self.generator_rate_minutes <= 60, "streaming.generator_rate_minutes must be 1..60")
        _require(1 <= self.records_per_invocation <= 10000, "streaming.records_per_invocation must be 1..10000")
        _require(
            self.glue_worker_type in _GLUE_WORKER_TYPES,
            f"streaming.glue_worker_type must be one of {', '.join(_GLUE_WORKER_TYPES)}",
        )
        _require(self.glue_number_of_workers >= 2, "streaming.glue_number_of_workers must be at least 2")
        _require(1 <= self.window_size_seconds <= 3600, "streaming.window_size_seconds must be 1..3600")
        _require(
            0 < self.detector_offset_minutes < self.frequency_minutes,
            "streaming.detector_offset_minutes must be between 0 and frequency_minutes",
        )
        _require(self.anomaly_threshold > 0, "streaming.anomaly_threshold must be > 0")
        _require(8 <= self.history_length <= 10000, "streaming.history_length must be 8..10000")
        _require(self.anomaly_factor > 0, "streaming.anomaly_factor must be > 0")


@dataclass(frozen=True)
class ApprovalConfig:
    """The ApproveResults step: who is asked, how long a request lives, the endpoint's capacity."""

    approver_emails: tuple[str, ...] = ()
    expires_hours: int = 72
    expiry_check_minutes: int = 15
    endpoint_reserved_concurrency: int = 5
    dlq_max_receive_count: int = 3

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
        _require(1 <= self.dlq_max_receive_count <= 1000, "approval.dlq_max_receive_count must be 1..1000")
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


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _section(cls: type, raw: Mapping[str, Any] | None, where: str) -> Any:
    raw = dict(raw or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    if "subnet_ids" in raw:
        raw["subnet_ids"] = tuple(raw["subnet_ids"] or ())
    if "approver_emails" in raw:
        raw["approver_emails"] = tuple(raw["approver_emails"] or ())
    section = cls(**raw)
    if hasattr(section, "validate"):
        section.validate()
    return section


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
    return EnvironmentConfig(
        name=name,
        account=raw.get("account") or default_account,
        region=region,
        destroy_data_with_stack=bool(raw.get("destroy_data_with_stack", False)),
        termination_protection=bool(raw.get("termination_protection", True)),
        log_retention_days=retention,
        data_prep=_section(DataPrepConfig, raw.get("data_prep"), f"{name}.data_prep"),
        pipeline=_section(PipelineConfig, raw.get("pipeline"), f"{name}.pipeline"),
        streaming=_section(StreamingConfig, raw.get("streaming"), f"{name}.streaming"),
        operations=_section(OperationsConfig, raw.get("operations"), f"{name}.operations"),
        approval=_section(ApprovalConfig, raw.get("approval"), f"{name}.approval"),
    )
