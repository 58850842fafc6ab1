"""End every callback step that nothing else will end, with the true outcome.

The task watchdog and the Glue completion Lambda answer steps as events arrive, but EventBridge
delivers events on a best-effort basis and an asynchronous invocation can fail for good. This runs on
a schedule over the open token records and, for each:

- a step already answered: stops its Glue run if one still runs, then closes the record;
- an outcome decided but never delivered: delivers it (a success stays a success);
- a stop request: stops the work and fails the step "stopped on request";
- a Glue run that ended: success with the outputs if it SUCCEEDED, failure with Glue's error otherwise;
- a prep task that stopped without reporting (poll mode): stops its Glue run and fails the step;
- past the deadline without an outcome: stops whatever still runs and fails the step, saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callback_reconciler.config import ReconcilerConfig
from pipeline_callback.callback import deliver_recorded_outcome, report_outcome
from pipeline_callback.errors import describe_error
from pipeline_callback.glue import ACTIVE_STATES, OUTPUT_URI_ARGUMENT, SUCCEEDED, TERMINAL_STATES, glue_failure_reason
from pipeline_callback.glue_runs import GlueRun, find_runs_for_token, get_run, stop_if_active
from pipeline_callback.message import is_s3_uri
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import FAILURE, SUCCESS, TokenRecord, TokenRecords

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

RECONCILER = "reconciler"
STOPPED_ON_REQUEST = "stopped on request"


@dataclass(frozen=True)
class ReconcilerClients:
    sagemaker: SageMakerClient
    glue: GlueClient
    records: TokenRecords
    ecs: ECSClient | None = None


@dataclass
class ReconcileSummary:
    examined: int = 0
    overdue: int = 0
    actions: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def resolved(self) -> int:
        return sum(1 for action in self.actions.values() if not action.startswith("waiting"))


def reconcile(
    config: ReconcilerConfig,
    clients: ReconcilerClients,
    retrier: Retrier,
    *,
    clock: Callable[[], float] = time.time,
    time_left: Callable[[], float] = lambda: 900.0,
) -> ReconcileSummary:
    """One pass over the open records; one record's error does not stop the others."""
    summary = ReconcileSummary()
    for record in clients.records.open_records():
        if time_left() < 10:
            logger.warning("Stopping this pass early: little time left; the next run continues")
            break
        summary.examined += 1
        now = clock()
        if not record.reported and now - record.created_at > config.alarm_after_seconds:
            summary.overdue += 1
        try:
            summary.actions[record.token] = reconcile_one(record, config, clients, retrier, now)
        except Exception as error:
            logger.exception("Could not reconcile token %s", record.token)
            summary.errors[record.token] = describe_error(error)
    for token, action in summary.actions.items():
        logger.info("Token %s: %s", token, action)
    return summary


def reconcile_one(
    record: TokenRecord, config: ReconcilerConfig, clients: ReconcilerClients, retrier: Retrier, now: float
) -> str:
    records, glue, job = clients.records, clients.glue, config.glue_job_name
    run = _glue_run(glue, job, record, retrier)

    if record.reported:
        if run is not None and stop_if_active(glue, job, run, retrier):
            return f"stopped Glue run {run.run_id}: its step was already answered {record.outcome}"
        if run is None or run.state in TERMINAL_STATES:
            records.mark_work_ended(record.token, note="reconciler: no work left")
            return "closed"
        return f"waiting for Glue run {run.run_id} ({run.state}) of an answered step"

    if record.decided:
        report = deliver_recorded_outcome(
            records,
            clients.sagemaker,
            record,
            delivered_by=RECONCILER,
            retrier=retrier,
            work_ended=run is None or run.state in TERMINAL_STATES,
        )
        return f"delivered the recorded outcome: {report.note}"

    if record.stop_requested:
        stopped = _stop_everything(record, run, config, clients, retrier)
        return _fail(record, STOPPED_ON_REQUEST, clients, retrier, ended=not stopped, decided_by="stop request")

    if run is not None and run.state == SUCCEEDED:
        output = record.output_location or run.arguments.get(OUTPUT_URI_ARGUMENT, "")
        if is_s3_uri(output):
            report = report_outcome(
                records,
                clients.sagemaker,
                record.token,
                outcome=SUCCESS,
                outputs=success_output_parameters(output),
                decided_by=RECONCILER,
                retrier=retrier,
                work_ended=True,
            )
            return f"Glue run {run.run_id} SUCCEEDED without a callback: {report.note}"
    if run is not None and run.state in TERMINAL_STATES:
        reason = glue_failure_reason(run.run_id, run.state, run.error_message)
        return _fail(record, reason, clients, retrier, ended=True)

    task_stop = _stopped_task_reason(record, config, clients, retrier)
    if task_stop is not None:
        stopped = run is not None and stop_if_active(glue, job, run, retrier)
        reason = f"Prep task stopped before reporting: {task_stop} (found by the reconciler)"
        if stopped and run is not None:
            reason += f"; Glue job run {run.run_id} was asked to stop"
        return _fail(record, reason, clients, retrier, ended=not stopped)

    if record.deadline_at and now > record.deadline_at:
        stopped = _stop_everything(record, run, config, clients, retrier)
        waited = (now - record.created_at) / 60
        where = f"Glue job run {run.run_id} was {run.state}" if run else "the prep work never started"
        reason = f"No outcome {waited:.0f} minutes after the callback message (deadline passed): {where}"
        return _fail(record, reason, clients, retrier, ended=not stopped)
    return f"waiting ({run.state if run else 'no Glue run yet'})"


def _glue_run(glue: GlueClient, job: str, record: TokenRecord, retrier: Retrier) -> GlueRun | None:
    if record.glue_run_id:
        return get_run(glue, job, record.glue_run_id, retrier)
    runs = find_runs_for_token(glue, job, record.token, retrier)
    return runs[0] if runs else None


def _stopped_task_reason(
    record: TokenRecord, config: ReconcilerConfig, clients: ReconcilerClients, retrier: Retrier
) -> str | None:
    """The task's stop reason when it stopped (or ECS no longer knows it); None while it runs."""
    if not record.task_arn or clients.ecs is None or config.cluster_arn is None:
        return None
    ecs, cluster = clients.ecs, config.cluster_arn
    response = retrier.call(
        lambda: ecs.describe_tasks(cluster=cluster, tasks=[record.task_arn]), description="ECS DescribeTasks"
    )
    tasks = response.get("tasks", [])
    if not tasks:
        return "the task is no longer known to ECS"
    task = tasks[0]
    if task.get("lastStatus") != "STOPPED":
        return None
    stopped_at = task.get("stoppedAt")
    if stopped_at is not None and time.time() - stopped_at.timestamp() < config.task_stop_grace_seconds:
        return None  # the watchdog's event is on its way; give it the first word
    return str(task.get("stoppedReason") or task.get("stopCode") or "unknown reason")


def _stop_everything(
    record: TokenRecord, run: GlueRun | None, config: ReconcilerConfig, clients: ReconcilerClients, retrier: Retrier
) -> bool:
    """Stop the token's Glue run and task; True when something was asked to stop."""
    stopped = False
    if run is not None and run.state in ACTIVE_STATES:
        stopped = stop_if_active(clients.glue, config.glue_job_name, run, retrier)
    if record.task_arn and clients.ecs is not None and config.cluster_arn is not None:
        ecs, cluster = clients.ecs, config.cluster_arn
        try:
            retrier.call(
                lambda: ecs.stop_task(cluster=cluster, task=record.task_arn, reason="callback step ended"),
                description="ECS StopTask",
            )
        except Exception as error:
            logger.warning("Could not stop task %s: %s", record.task_arn, describe_error(error))
    return stopped


def _fail(
    record: TokenRecord,
    reason: str,
    clients: ReconcilerClients,
    retrier: Retrier,
    *,
    ended: bool,
    decided_by: str = RECONCILER,
) -> str:
    report = report_outcome(
        clients.records,
        clients.sagemaker,
        record.token,
        outcome=FAILURE,
        reason=reason,
        decided_by=decided_by,
        retrier=retrier,
        work_ended=ended,
    )
    return f"failed the step ({report.note}): {reason}"
