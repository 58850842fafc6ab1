"""A prep task stopped: make sure its callback step gets the true outcome, and its Glue run does not outlive it.

- The task reported (the token record says so): nothing to do but make sure no Glue run is left running.
- The task decided an outcome but could not deliver it (for example a success that met a network
  outage): deliver that recorded outcome, never a failure in its place.
- The task died before deciding (out of memory, killed, stopped): look at its Glue run. SUCCEEDED
  means the work is done, so the step succeeds; a run still going is stopped and the step fails with
  the task's stop reason; a failed run fails the step with Glue's error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_callback.callback import deliver_recorded_outcome, report_outcome

# ConfigError is part of this module's interface (load_config raises it).
from pipeline_callback.environment import ConfigError as ConfigError
from pipeline_callback.environment import required_variable
from pipeline_callback.errors import describe_error
from pipeline_callback.glue import OUTPUT_URI_ARGUMENT, SUCCEEDED, TERMINAL_STATES, glue_failure_reason
from pipeline_callback.glue_runs import GlueRun, find_runs_for_token, get_run, stop_if_active
from pipeline_callback.message import is_s3_uri, is_valid_callback_token
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import FAILURE, SUCCESS, RecordSettings, TokenRecords, load_record_settings

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "token"  # noqa: S105 - the name of an environment variable, not a secret
WATCHDOG = "task-watchdog"


@dataclass(frozen=True)
class WatchdogConfig:
    container_name: str
    glue_job_name: str
    records: RecordSettings


def load_config(environ: Mapping[str, str]) -> WatchdogConfig:
    return WatchdogConfig(
        container_name=required_variable(environ, "CONTAINER_NAME"),
        glue_job_name=required_variable(environ, "GLUE_JOB_NAME"),
        records=load_record_settings(environ),
    )


@dataclass(frozen=True)
class WatchdogClients:
    sagemaker: SageMakerClient
    glue: GlueClient
    records: TokenRecords


def handle_task_state_change(
    event: Mapping[str, Any], config: WatchdogConfig, clients: WatchdogClients, retrier: Retrier
) -> str:
    """Act on an EventBridge 'ECS Task State Change' event; returns a short description of what happened."""
    detail = event.get("detail") or {}
    task_arn = detail.get("taskArn", "<unknown task>")
    if detail.get("lastStatus") != "STOPPED":
        return f"ignored: task {task_arn} is {detail.get('lastStatus')}, not STOPPED"
    token = _callback_token(detail, config.container_name)
    if token is None:
        logger.info("Task %s has no callback token for %s; nothing to report", task_arn, config.container_name)
        return "ignored: no callback token"
    if not is_valid_callback_token(token):
        logger.error("Task %s carries an invalid callback token %r; cannot report", task_arn, token)
        return "ignored: invalid callback token"

    containers = detail.get("containers", [])
    container: Mapping[str, Any] = next((c for c in containers if c.get("name") == config.container_name), {})
    record = clients.records.get(token)
    glue_run = _glue_run(clients, config, token, record.glue_run_id if record else "", retrier)

    if record is not None and record.reported:
        _stop_leftover_run(clients, config, token, glue_run, retrier)
        logger.info("Task %s stopped after its step was answered (%s, token %s)", task_arn, record.outcome, token)
        return "task reported itself"
    if record is not None and record.decided:
        # The task decided but could not deliver: deliver what it decided.
        report = deliver_recorded_outcome(
            clients.records,
            clients.sagemaker,
            record,
            delivered_by=WATCHDOG,
            retrier=retrier,
            work_ended=glue_run is None or glue_run.state in TERMINAL_STATES,
        )
        return f"delivered the task's recorded outcome: {report.note}"

    stop_reason = stopped_task_reason(detail, container)
    if glue_run is not None and glue_run.state == SUCCEEDED:
        output = (record.output_location if record else "") or glue_run.arguments.get(OUTPUT_URI_ARGUMENT, "")
        if is_s3_uri(output):
            logger.warning("Task %s died after Glue run %s SUCCEEDED: reporting the success", task_arn, glue_run.run_id)
            report = report_outcome(
                clients.records,
                clients.sagemaker,
                token,
                outcome=SUCCESS,
                outputs=success_output_parameters(output),
                decided_by=WATCHDOG,
                retrier=retrier,
                work_ended=True,
            )
            return f"success reported for Glue run {glue_run.run_id} ({report.note})"
    reason = stop_reason
    ended = True
    if glue_run is not None and glue_run.state in TERMINAL_STATES:
        reason = f"{stop_reason}; {glue_failure_reason(glue_run.run_id, glue_run.state, glue_run.error_message)}"
    elif glue_run is not None:
        try:
            if stop_if_active(clients.glue, config.glue_job_name, glue_run, retrier):
                reason = f"{stop_reason}; Glue job run {glue_run.run_id} was asked to stop"
        except Exception as error:
            logger.error("Could not stop Glue run %s: %s", glue_run.run_id, describe_error(error))
        ended = False
    logger.warning("Task %s stopped before reporting (token %s): %s", task_arn, token, reason)
    report = report_outcome(
        clients.records,
        clients.sagemaker,
        token,
        outcome=FAILURE,
        reason=reason,
        decided_by=WATCHDOG,
        retrier=retrier,
        work_ended=ended,
    )
    return f"failure reported ({report.note}): {reason}"


def _glue_run(
    clients: WatchdogClients, config: WatchdogConfig, token: str, run_id: str, retrier: Retrier
) -> GlueRun | None:
    """The token's Glue run: by the id the task recorded, else by the token argument every run carries."""
    if run_id:
        return get_run(clients.glue, config.glue_job_name, run_id, retrier)
    runs = find_runs_for_token(clients.glue, config.glue_job_name, token, retrier)
    return runs[0] if runs else None


def _stop_leftover_run(
    clients: WatchdogClients, config: WatchdogConfig, token: str, run: GlueRun | None, retrier: Retrier
) -> None:
    if run is None:
        return
    if stop_if_active(clients.glue, config.glue_job_name, run, retrier):
        logger.warning("Stopped Glue run %s: its step (token %s) was already answered", run.run_id, token)
    elif run.state in TERMINAL_STATES:
        clients.records.mark_work_ended(token, note=f"Glue run {run.run_id} {run.state}")


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
