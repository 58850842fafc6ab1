"""What the callback handler does with one queue message. AWS clients are passed in, never created here.

Every decision goes through the token record (pipeline_callback.token_records):

- a start claims the token first, so two deliveries of one message never start two runs, and a start
  that arrives after the execution's stop starts nothing;
- a stop is recorded before anything else, even when no start has been seen yet;
- the step's outcome is decided once, in the record, and only then sent to SageMaker.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from callback_handler.config import HandlerConfig, PrepTaskSettings
from pipeline_callback.callback import report_outcome
from pipeline_callback.errors import describe_error
from pipeline_callback.faults import TransientError, error_code, may_have_executed
from pipeline_callback.glue import (
    ACTIVE_STATES,
    CALLBACK_TOKEN_ARGUMENT,
    INPUT_URI_ARGUMENT,
    OUTPUT_URI_ARGUMENT,
    PIPELINE_EXECUTION_ARN_ARGUMENT,
)
from pipeline_callback.glue_runs import find_runs_for_token, start_run_once, stop_runs
from pipeline_callback.message import InvalidRequest, StartRequest, StopRequest, parse_callback_message
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import FAILURE, TokenRecord, TokenRecords

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import KeyValuePairTypeDef
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

STOPPED_ON_REQUEST = "stopped on request"
HANDLER = "callback-handler"
STOP_REQUEST = "stop request"
# RunTask `failures` reasons that mean "no capacity right now", not "this can never work".
_CAPACITY_FAILURE_PREFIXES = (
    "Capacity is unavailable",
    "RESOURCE:",
    "AGENT",
    "Throttl",
    "Rate exceeded",
    "Timeout waiting for network interface",
)
# RunTask's clientToken: "Up to 64 characters are allowed" (ECS API Reference, RunTask).
MAX_CLIENT_TOKEN_CHARS = 64


class RunTaskRejectedError(Exception):
    """RunTask answered with `failures` that retrying will not fix."""


class RunTaskCapacityError(TransientError):
    """RunTask answered with capacity/throttling `failures`: worth retrying (with a fresh clientToken)."""


class StartInProgressError(TransientError):
    """Another delivery of this message is starting the work right now: let SQS deliver this one later."""


@dataclass
class Clients:
    ecs: ECSClient
    glue: GlueClient
    sagemaker: SageMakerClient
    records: TokenRecords


@dataclass
class HandlerRun:
    """One message's handling: the clients, the retry rule and this delivery's identity."""

    config: HandlerConfig
    clients: Clients
    retrier: Retrier
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)


def ecs_client_token(callback_token: str, generation: int = 0) -> str:
    """RunTask idempotency: a redelivered message maps to the same request, so no second task starts.

    ECS answers a reused clientToken with the cached result, including a cached *failure*, so after a
    definite "no task started" (capacity `failures`) the next attempt uses the next generation.
    """
    base = f"sagemaker-callback-{callback_token}"
    return base if generation == 0 else f"{base}-{generation}"[:MAX_CLIENT_TOKEN_CHARS]


def handle_callback_message(body: str, run: HandlerRun) -> str:
    """Act on one message body and return a short description of what happened.

    Raises UnanswerableMessageError when the body has no valid token (the caller reports a batch item
    failure so the message ends in the DLQ). Other exceptions mean the message should be retried.
    """
    request = parse_callback_message(body, pipeline_name=run.config.pipeline_name)
    if isinstance(request, InvalidRequest):
        report = _report_failure(run, request.token, request.reason, decided_by=HANDLER)
        return f"invalid arguments reported as failure ({report.note}): {request.reason}"
    if isinstance(request, StopRequest):
        return stop_work(request, run)
    return start_work(request, run)


# -- start -------------------------------------------------------------------------------------
def start_work(request: StartRequest, run: HandlerRun) -> str:
    records = run.clients.records
    settings = run.config.records
    claim = records.claim_start(
        request.token,
        owner=run.owner,
        lease_seconds=settings.lease_seconds if settings else 900.0,
        execution_arn=request.pipeline_execution_arn or "",
        input_location=request.input_location,
        output_location=request.output_location,
        mode=run.config.completion_mode,
    )
    if not claim.claimed:
        record = claim.record
        if record.stop_requested and not record.started:
            report = _report_failure(run, request.token, STOPPED_ON_REQUEST, decided_by=STOP_REQUEST)
            logger.info("Not starting token %s: %s", request.token, claim.why_not)
            return f"not started: {claim.why_not} ({report.note})"
        if record.started or record.decided:
            logger.info("Duplicate delivery for token %s: %s", request.token, claim.why_not)
            return f"duplicate delivery: {claim.why_not}"
        raise StartInProgressError(f"token {request.token}: {claim.why_not}")

    what = "prep task" if run.config.prep_task is not None else "Glue job run"
    try:
        if run.config.prep_task is not None:
            work_id = _run_prep_task(request, run.config.prep_task, run)
            record = records.record_started(request.token, owner=run.owner, task_arn=work_id)
        else:
            work_id = _start_glue_run(request, run)
            record = records.record_started(request.token, owner=run.owner, glue_run_id=work_id)
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            # Our lease ran out and another delivery took over: it owns the token now.
            return f"{what} start handed over to another delivery"
        return _start_failed(request, run, what, error)
    except Exception as error:
        return _start_failed(request, run, what, error)

    if record.stop_requested or (record.decided and record.decided_by != HANDLER):
        # A stop (or the reconciler's deadline) arrived while we were starting: undo the start.
        logger.warning("Token %s was stopped while its %s started; stopping %s", request.token, what, work_id)
        _stop_started_work(run, record)
        if record.stop_requested:
            _report_failure(run, request.token, STOPPED_ON_REQUEST, decided_by=STOP_REQUEST)
        return f"{what} {work_id} started and stopped again: the execution was stopped meanwhile"
    return f"{what} started: {work_id}"


def _start_failed(request: StartRequest, run: HandlerRun, what: str, error: Exception) -> str:
    logger.error("Could not start the %s for token %s: %s", what, request.token, describe_error(error))
    # After a lost answer the work may exist after all: the record stays open, and the reconciler
    # stops whatever it finds running for the token.
    report = _report_failure(
        run,
        request.token,
        f"Could not start the {what}: {describe_error(error)}",
        decided_by=HANDLER,
        work_ended=not may_have_executed(error),
    )
    return f"{what} not started; failure reported ({report.note})"


def _run_prep_task(request: StartRequest, settings: PrepTaskSettings, run: HandlerRun) -> str:
    """Poll mode: RunTask, retried on capacity with a fresh clientToken, on errors with the same one."""
    generation = [0]

    def attempt() -> str:
        try:
            return _run_prep_task_once(request, settings, run.config.glue_job_name, run.clients.ecs, generation[0])
        except RunTaskCapacityError:
            generation[0] += 1  # a definite "no task": the next try must not get this cached answer back
            raise

    return run.retrier.call(attempt, description="ECS RunTask")


def _run_prep_task_once(
    request: StartRequest, settings: PrepTaskSettings, glue_job_name: str, ecs: ECSClient, generation: int
) -> str:
    environment: list[KeyValuePairTypeDef] = [
        {"name": "inputLocation", "value": request.input_location},
        {"name": "outputLocation", "value": request.output_location},
        {"name": "token", "value": request.token},
        {"name": "glue_job_name", "value": glue_job_name},
    ]
    if request.pipeline_execution_arn:
        environment.append({"name": "pipelineExecutionArn", "value": request.pipeline_execution_arn})
    try:
        response = ecs.run_task(
            cluster=settings.cluster_arn,
            taskDefinition=settings.task_definition_arn,
            launchType="FARGATE",
            count=1,
            # startedBy lets a stop request find the task again by token.
            startedBy=request.token,
            clientToken=ecs_client_token(request.token, generation),
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(settings.subnet_ids),
                    "securityGroups": list(settings.security_group_ids),
                    "assignPublicIp": "ENABLED" if settings.assign_public_ip == "ENABLED" else "DISABLED",
                }
            },
            overrides={"containerOverrides": [{"name": settings.container_name, "environment": environment}]},
        )
    except ClientError as error:
        # "The provided clientToken is already in use with a different RunTask request. The resourceIds
        # are the existing task ARNs which are already associated with the clientToken." (ECS API
        # Reference, ConflictException). After a redeploy the task definition differs, but the task is ours.
        existing = error.response.get("resourceIds") if error_code(error) == "ConflictException" else None
        if isinstance(existing, list) and existing:
            logger.info("RunTask clientToken already used by task %s: adopting it", existing[0])
            return str(existing[0])
        raise
    tasks = response.get("tasks", [])
    if tasks:
        return tasks[0].get("taskArn", "<unknown task>")
    failures = response.get("failures", [])
    reasons = "; ".join(_describe_run_task_failure(failure) for failure in failures)
    if failures and all(_is_capacity_failure(failure) for failure in failures):
        raise RunTaskCapacityError(f"RunTask failures: {reasons}")
    raise RunTaskRejectedError(f"RunTask failures: {reasons}" if reasons else "RunTask started no task")


def _describe_run_task_failure(failure: Any) -> str:
    parts = [str(failure.get("reason") or "unknown reason")]
    if failure.get("detail"):
        parts.append(str(failure["detail"]))
    return " - ".join(parts)


def _is_capacity_failure(failure: Any) -> bool:
    return str(failure.get("reason") or "").startswith(_CAPACITY_FAILURE_PREFIXES)


def _start_glue_run(request: StartRequest, run: HandlerRun) -> str:
    """Events mode: start the Glue run (once per token); the glue-completion Lambda reports."""
    glue, job = run.clients.glue, run.config.glue_job_name
    # We hold the token's lease, so nobody else is starting a run: a run that exists was started by an
    # earlier delivery that died before recording it. Adopt it rather than start a second one.
    existing = find_runs_for_token(glue, job, request.token, run.retrier)
    if existing:
        logger.info("Glue run %s already exists for token %s; adopting it", existing[0].run_id, request.token)
        return existing[0].run_id
    arguments = {
        INPUT_URI_ARGUMENT: request.input_location,
        OUTPUT_URI_ARGUMENT: request.output_location,
        CALLBACK_TOKEN_ARGUMENT: request.token,
    }
    if request.pipeline_execution_arn:
        arguments[PIPELINE_EXECUTION_ARN_ARGUMENT] = request.pipeline_execution_arn
    return start_run_once(glue, job, arguments, run.retrier)


# -- stop --------------------------------------------------------------------------------------
def stop_work(request: StopRequest, run: HandlerRun) -> str:
    """Record the stop (so a later start starts nothing), stop what runs, then fail the step."""
    record = run.clients.records.record_stop(request.token, execution_arn=request.pipeline_execution_arn or "")
    stopped, errors = _stop_started_work(run, record)
    # The execution cannot finish stopping until the step is answered, so answer first...
    report = _report_failure(run, request.token, STOPPED_ON_REQUEST, decided_by=STOP_REQUEST)
    logger.info("Stop request for token %s: stopped %s; %s", request.token, stopped, report.note)
    # ...then raise so SQS redelivers the stop request and the work is stopped on a later try.
    if errors:
        raise RuntimeError(f"Could not stop everything for token {request.token}: {'; '.join(errors)}")
    return f"stopped {len(stopped)} and reported '{STOPPED_ON_REQUEST}' ({report.note})"


def _stop_started_work(run: HandlerRun, record: TokenRecord) -> tuple[list[str], list[str]]:
    """Stop the token's task (poll mode) and Glue runs; returns (what was stopped, errors)."""
    stopped: list[str] = []
    errors: list[str] = []
    settings = run.config.prep_task
    if settings is not None:
        try:
            task_arns = [record.task_arn] if record.task_arn else _running_task_arns(run, settings, record.token)
        except Exception as error:
            task_arns = []
            errors.append(f"listing tasks: {describe_error(error)}")
        for task_arn in task_arns:
            try:
                run.retrier.call(
                    functools.partial(
                        run.clients.ecs.stop_task,
                        cluster=settings.cluster_arn,
                        task=task_arn,
                        reason=STOPPED_ON_REQUEST,
                    ),
                    description="ECS StopTask",
                )
                stopped.append(task_arn)
            except Exception as error:
                errors.append(f"stopping {task_arn}: {describe_error(error)}")
    try:
        glue, job = run.clients.glue, run.config.glue_job_name
        runs = [r.run_id for r in find_runs_for_token(glue, job, record.token, run.retrier, states=ACTIVE_STATES)]
        errors.extend(stop_runs(glue, job, runs, run.retrier))
        stopped.extend(runs)
    except Exception as error:
        errors.append(f"stopping Glue runs: {describe_error(error)}")
    return stopped, errors


def _running_task_arns(run: HandlerRun, settings: PrepTaskSettings, callback_token: str) -> list[str]:
    """Tasks started for the token. "When you specify startedBy as the filter, it must be the only filter
    that you use." (ECS API Reference, ListTasks), so no desiredStatus: StopTask on a stopped task is harmless.
    """
    arns: list[str] = []
    next_token = ""
    ecs = run.clients.ecs
    while True:
        if next_token:
            page = run.retrier.call(
                functools.partial(
                    ecs.list_tasks, cluster=settings.cluster_arn, startedBy=callback_token, nextToken=next_token
                ),
                description="ECS ListTasks",
            )
        else:
            page = run.retrier.call(
                lambda: ecs.list_tasks(cluster=settings.cluster_arn, startedBy=callback_token),
                description="ECS ListTasks",
            )
        arns.extend(page.get("taskArns", []))
        next_token = page.get("nextToken", "")
        if not next_token:
            return arns


def _report_failure(
    run: HandlerRun, callback_token: str, reason: str, *, decided_by: str, work_ended: bool | None = None
) -> Any:
    return report_outcome(
        run.clients.records,
        run.clients.sagemaker,
        callback_token,
        outcome=FAILURE,
        reason=reason,
        decided_by=decided_by,
        retrier=run.retrier,
        work_ended=decided_by == HANDLER if work_ended is None else work_ended,
    )

