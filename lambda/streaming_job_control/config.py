"""The supervisor's environment, parsed and validated once at cold start; errors name the variable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from streaming_job_control.run_policy import RunPolicy
from streaming_job_control.supervisor import SupervisorSettings


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class SupervisorConfig:
    settings: SupervisorSettings
    metric_namespace: str


def load_config(env: Mapping[str, str]) -> SupervisorConfig:
    try:
        policy = RunPolicy.parse(
            _required(env, "RUN_MODE"), env.get("GENERATOR_RULE_NAME") or None, env.get("ACTIVE_HOURS_UTC") or None
        )
    except ValueError as error:
        raise ConfigError(f"RUN_MODE, GENERATOR_RULE_NAME or ACTIVE_HOURS_UTC is invalid: {error}") from None
    settings = SupervisorSettings(
        job_name=_required(env, "JOB_NAME"),
        policy=policy,
        glue_max_retries=_int(env, "GLUE_MAX_RETRIES", minimum=0),
        failure_limit=_int(env, "FAILURE_LIMIT", minimum=1),
        failure_window=timedelta(hours=_int(env, "FAILURE_WINDOW_HOURS", minimum=1)),
        restart_grace=timedelta(minutes=_int(env, "RESTART_GRACE_MINUTES", minimum=0)),
    )
    return SupervisorConfig(settings=settings, metric_namespace=_required(env, "METRIC_NAMESPACE"))


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def _int(env: Mapping[str, str], name: str, *, minimum: int) -> int:
    raw = _required(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value
