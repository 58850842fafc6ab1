"""Decide whether a stopped prep task left its callback step unanswered, and if so fail the step."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_callback.callback import send_step_failure

# ConfigError is part of this module's interface (load_config raises it).
from pipeline_callback.environment import ConfigError as ConfigError
from pipeline_callback.environment import required_variable
from pipeline_callback.message import is_valid_callback_token
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "token"  # noqa: S105 - the name of an environment variable, not a secret


@dataclass(frozen=True)
class WatchdogConfig:
    container_name: str


def load_config(environ: Mapping[str, str]) -> WatchdogConfig:
    return WatchdogConfig(container_name=required_variable(environ, "CONTAINER_NAME"))


def handle_task_state_change(
    event: Mapping[str, Any], container_name: str, *, sagemaker: SageMakerClient, retrier: Retrier
) -> str:
    """Act on an EventBridge 'ECS Task State Change' event; returns a short description of what happened."""
    detail = event.get("detail") or {}
    task_arn = detail.get("taskArn", "<unknown task>")
    if detail.get("lastStatus") != "STOPPED":
        return f"ignored: task {task_arn} is {detail.get('lastStatus')}, not STOPPED"
    token = _callback_token(detail, container_name)
    if token is None:
        logger.info("Task %s has no callback token for container %s; nothing to report", task_arn, container_name)
        return "ignored: no callback token"
    if not is_valid_callback_token(token):
        logger.error("Task %s carries an invalid callback token %r; cannot report", task_arn, token)
        return "ignored: invalid callback token"

    containers = detail.get("containers", [])
    container: Mapping[str, Any] = next((c for c in containers if c.get("name") == container_name), {})
    if container.get("exitCode") == 0:
        logger.info("Task %s exited 0, so it reported its callback (token %s)", task_arn, token)
        return "task reported itself"

    reason = stopped_task_reason(detail, container)
    logger.warning("Task %s stopped before reporting (token %s): %s", task_arn, token, reason)
    outcome = send_step_failure(sagemaker, token, reason, retrier)
    return f"failure reported ({outcome.value}): {reason}"


def stopped_task_reason(detail: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """E.g. 'Prep task stopped before reporting: OutOfMemoryError: ... (exit 137; Essential container in task ...)'."""
    stopped_reason = detail.get("stoppedReason")
    container_reason = container.get("reason")
    exit_code = container.get("exitCode")
    headline = container_reason or stopped_reason or "unknown reason"
    facts = [f"exit {exit_code}" if exit_code is not None else "no exit code"]
    if stopped_reason and stopped_reason != headline:
        facts.append(str(stopped_reason))
    if detail.get("stopCode"):
        facts.append(f"stop code {detail['stopCode']}")
    return f"Prep task stopped before reporting: {headline} ({'; '.join(facts)})"


def _callback_token(detail: Mapping[str, Any], container_name: str) -> str | None:
    for override in (detail.get("overrides") or {}).get("containerOverrides", []):
        if override.get("name") != container_name:
            continue
        for variable in override.get("environment", []):
            if variable.get("name") == TOKEN_VARIABLE:
                return str(variable.get("value", ""))
    return None
