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
    )
