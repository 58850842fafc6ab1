"""The handler's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pipeline_callback.environment import ConfigError, required_variable
from pipeline_callback.token_records import RecordSettings, load_record_settings

CompletionMode = Literal["poll", "events"]
_ASSIGN_PUBLIC_IP_VALUES = ("ENABLED", "DISABLED")


@dataclass(frozen=True)
class PrepTaskSettings:
    """Where and how to run the Fargate prep task (poll mode)."""

    cluster_arn: str
    task_definition_arn: str
    container_name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    assign_public_ip: str


@dataclass(frozen=True)
class HandlerConfig:
    completion_mode: CompletionMode
    glue_job_name: str
    # Present exactly when completion_mode == "poll".
    prep_task: PrepTaskSettings | None
    # Output locations must belong to an execution of this pipeline (see parse_callback_message).
    pipeline_name: str | None = None
    records: RecordSettings | None = None


def load_config(environ: Mapping[str, str]) -> HandlerConfig:
    mode = environ.get("COMPLETION_MODE", "").strip() or "poll"
    if mode not in ("poll", "events"):
        raise ConfigError(f"environment variable COMPLETION_MODE must be 'poll' or 'events', got {mode!r}")
    glue_job_name = required_variable(environ, "GLUE_JOB_NAME")
    pipeline_name = required_variable(environ, "PIPELINE_NAME")
    records = load_record_settings(environ)
    if mode == "events":
        return HandlerConfig(
            completion_mode="events",
            glue_job_name=glue_job_name,
            prep_task=None,
            pipeline_name=pipeline_name,
            records=records,
        )

    prep_task = PrepTaskSettings(
        cluster_arn=required_variable(environ, "CLUSTER_ARN"),
        task_definition_arn=required_variable(environ, "TASK_DEFINITION_ARN"),
        container_name=required_variable(environ, "CONTAINER_NAME"),
        subnet_ids=_required_list(environ, "SUBNET_IDS"),
        security_group_ids=_required_list(environ, "SECURITY_GROUP_IDS"),
        assign_public_ip=_assign_public_ip(environ),
    )
    return HandlerConfig(
        completion_mode="poll",
        glue_job_name=glue_job_name,
        prep_task=prep_task,
        pipeline_name=pipeline_name,
        records=records,
    )
def _assign_public_ip(environ: Mapping[str, str]) -> str:
    value = required_variable(environ, "ASSIGN_PUBLIC_IP")
    if value not in _ASSIGN_PUBLIC_IP_VALUES:
        raise ConfigError(f"environment variable ASSIGN_PUBLIC_IP must be ENABLED or DISABLED, got {value!r}")
    return value


def _required_list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in required_variable(environ, name).split(",") if item.strip())
    if not items:
        raise ConfigError(f"environment variable {name} must list at least one comma-separated value")
    return items
