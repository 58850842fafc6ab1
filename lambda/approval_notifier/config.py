"""The notifier's environment, validated once at cold start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_callback.environment import ConfigError, required_variable


@dataclass(frozen=True)
class NotifierConfig:
    table_name: str
    topic_arn: str
    endpoint_url: str
    expires_hours: int
    environment_name: str
    # The approval queue's redrive maxReceiveCount: the delivery with this receive count is the last one.
    max_receive_count: int = 5


def load_config(environ: Mapping[str, str]) -> NotifierConfig:
    endpoint_url = required_variable(environ, "APPROVAL_ENDPOINT_URL")
    if not endpoint_url.startswith(("https://", "http://127.0.0.1:")):
        raise ConfigError("environment variable APPROVAL_ENDPOINT_URL must be an https:// URL")
    hours_text = required_variable(environ, "APPROVAL_EXPIRES_HOURS")
    try:
        hours = int(hours_text)
    except ValueError as error:
        raise ConfigError(
            f"environment variable APPROVAL_EXPIRES_HOURS must be an integer, got {hours_text!r}"
        ) from error
    if not 1 <= hours <= 24 * 30:
        raise ConfigError("environment variable APPROVAL_EXPIRES_HOURS must be 1..720")
    return NotifierConfig(
        table_name=required_variable(environ, "APPROVAL_TABLE_NAME"),
        topic_arn=required_variable(environ, "APPROVERS_TOPIC_ARN"),
        endpoint_url=endpoint_url,
        expires_hours=hours,
        environment_name=required_variable(environ, "ENVIRONMENT_NAME"),
        max_receive_count=_max_receive_count(environ),
    )


def _max_receive_count(environ: Mapping[str, str]) -> int:
    text = required_variable(environ, "APPROVAL_MAX_RECEIVE_COUNT")
    try:
        count = int(text)
    except ValueError as error:
        raise ConfigError(
            f"environment variable APPROVAL_MAX_RECEIVE_COUNT must be an integer, got {text!r}"
        ) from error
    # SQS accepts a maxReceiveCount of 1..1000 (the construct passes approval.dlq_max_receive_count).
    if not 1 <= count <= 1000:
        raise ConfigError(f"environment variable APPROVAL_MAX_RECEIVE_COUNT must be 1..1000, got {count}")
    return count
