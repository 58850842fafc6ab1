"""What the callback handler does with one queue message. AWS clients are passed in, never created here."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from callback_handler.config import HandlerConfig, PrepTaskSettings
from pipeline_callback.callback import CallbackOutcome, send_step_failure
from pipeline_callback.errors import describe_error
from pipeline_callback.glue import (
    ACTIVE_STATES,
    CALLBACK_TOKEN_ARGUMENT,
    INPUT_URI_ARGUMENT,
    OUTPUT_URI_ARGUMENT,
    PIPELINE_EXECUTION_ARN_ARGUMENT,
)
from pipeline_callback.message import InvalidRequest, StartRequest, StopRequest, parse_callback_message
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier, TransientError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import KeyValuePairTypeDef, ListTasksResponseTypeDef
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_glue.type_defs import GetJobRunsResponseTypeDef
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

STOPPED_ON_REQUEST = "stopped on request"
# RunTask `failures` reasons that mean "no capacity right now", not "this can never work".
_CAPACITY_FAILURE_PREFIXES = (
    "Capacity is unavailable",
    "RESOURCE:",
    "AGENT",
    "Throttl",
    "Rate exceeded",
    "Timeout waiting for network interface",
)
# Bounds the events-mode duplicate search: 5 pages x 200 runs is far more than a day of runs.
MAX_JOB_RUN_PAGES = 5
JOB_RUNS_PAGE_SIZE = 200


class RunTaskRejectedError(Exception):
    """RunTask answered with `failures` that retrying will not fix."""


class RunTaskCapacityError(TransientError):
    """RunTask answered with capacity/throttling `failures`: worth retrying."""


def ecs_client_token(callback_token: str) -> str:
    """RunTask idempotency: a redelivered message maps to the same request, so no second task starts."""
    return f"sagemaker-callback-{callback_token}"


def handle_callback_message(
    body: str,
    config: HandlerConfig,
    *,
    ecs: ECSClient,
    glue: GlueClient,
    sagemaker: SageMakerClient,
    sleep: Callable[[float], None] = time.sleep,
    random_fraction: Callable[[], float] = random.random,
) -> str:
    """Act on one message body and return a short description of what happened.

    Raises UnanswerableMessageError when the body has no valid token (the caller reports a
    batch item failure so the message ends in the DLQ). Other exceptions mean the outcome could
    not be reported and the message should be retried.
    """
    retrier = Retrier(policy=LAMBDA_RETRY_POLICY, sleep=sleep, random=random_fraction)
    request = parse_callback_message(body)
    if isinstance(request, InvalidRequest):
        outcome = send_step_failure(sagemaker, request.token, request.reason, retrier)
        return f"invalid arguments reported as failure ({outcome.value}): {request.reason}"
    if isinstance(request, StopRequest):
        if config.prep_task is not None:
            return stop_prep_tasks(request, config.prep_task, ecs=ecs, sagemaker=sagemaker, retrier=retrier)
        return stop_glue_runs(request, config.glue_job_name, glue=glue, sagemaker=sagemaker, retrier=retrier)
    if config.prep_task is not None:
        return start_prep_task(
            request, config.prep_task, config.glue_job_name, ecs=ecs, sagemaker=sagemaker, retrier=retrier
        )
    return start_glue_run(request, config.glue_job_name, glue=glue, sagemaker=sagemaker, retrier=retrier)


def start_prep_task(
    request: StartRequest,
    settings: PrepTaskSettings,
    glue_job_name: str,
    *,
    ecs: ECSClient,
    sagemaker: SageMakerClient,
    retrier: Retrier,
) -> str:
    """Poll mode: start the Fargate task that runs and watches the Glue job; fail the step if it cannot start."""
    try:
        task_arn = retrier.call(
            lambda: _run_prep_task_once(request, settings, glue_job_name, ecs), description="ECS RunTask"
        )
    except Exception as error:
        outcome = _report_start_failure(sagemaker, request.token, "Could not start the prep task", error, retrier)
        return f"prep task not started; failure reported ({outcome.value})"
    return f"prep task started: {task_arn}"


def _run_prep_task_once(request: StartRequest, settings: PrepTaskSettings, glue_job_name: str, ecs: ECSClient) -> str:
    environment: list[KeyValuePairTypeDef] = [
        {"name": "inputLocation", "value": request.input_location},
        {"name": "outputLocation", "value": request.output_location},
        {"name": "token", "value": request.token},
        {"name": "glue_job_name", "value": glue_job_name},
    ]
    if request.pipeline_execution_arn:
        environment.append({"name": "pipelineExecutionArn", "value": request.pipeline_execution_arn})
    response = ecs.run_task(
        cluster=settings.cluster_arn,
        taskDefinition=settings.task_definition_arn,
        launchType="FARGATE",
        count=1,
        # startedBy lets a stop request find the task again by token.
        startedBy=request.token,
        clientToken=ecs_client_token(request.token),
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(settings.subnet_ids),
                "securityGroups": list(settings.security_group_ids),
                "assignPublicIp": "ENABLED" if settings.assign_public_ip == "ENABLED" else "DISABLED",
            }
        },
        overrides={"containerOverrides": [{"name": settings.container_name, "environment": environment}]},
    )
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


def start_glue_run(
    request: StartRequest,
    glue_job_name: str,
    *,
    glue: GlueClient,
    sagemaker: SageMakerClient,
    retrier: Retrier,
) -> str:
    """Events mode: start the Glue run directly (once per token); the glue-completion Lambda reports."""
    try:
        existing_run_ids = find_job_runs_for_token(glue, glue_job_name, request.token, retrier)
        if existing_run_ids:
            logger.info(
                "Glue run %s already exists for token %s; not starting another", existing_run_ids[0], request.token
            )
            return f"duplicate delivery: Glue run {existing_run_ids[0]} already started"
        arguments = {
            INPUT_URI_ARGUMENT: request.input_location,
            OUTPUT_URI_ARGUMENT: request.output_location,
            CALLBACK_TOKEN_ARGUMENT: request.token,
        }
        if request.pipeline_execution_arn:
            arguments[PIPELINE_EXECUTION_ARN_ARGUMENT] = request.pipeline_execution_arn
        run_id = retrier.call(
            lambda: glue.start_job_run(JobName=glue_job_name, Arguments=arguments)["JobRunId"],
            description="Glue StartJobRun",
        )
    except Exception as error:
        outcome = _report_start_failure(sagemaker, request.token, "Could not start the Glue job run", error, retrier)
        return f"Glue run not started; failure reported ({outcome.value})"
    return f"Glue run started: {run_id}"


def find_job_runs_for_token(
    glue: GlueClient,
    glue_job_name: str,
    callback_token: str,
    retrier: Retrier,
    *,
    states: frozenset[str] | None = None,
) -> list[str]:
    """Ids of the job's recent runs started for `callback_token` (optionally only in `states`), newest first."""
    matches: list[str] = []
    next_token = ""
    for _ in range(MAX_JOB_RUN_PAGES):
        page = retrier.call(
            functools.partial(_job_runs_page, glue, glue_job_name, next_token), description="Glue GetJobRuns"
        )
        for run in page.get("JobRuns", []):
            if run.get("Arguments", {}).get(CALLBACK_TOKEN_ARGUMENT) != callback_token:
                continue
            if states is None or run.get("JobRunState") in states:
                matches.append(run["Id"])
        next_token = page.get("NextToken", "")
        if not next_token:
            break
    return matches


def _job_runs_page(glue: GlueClient, glue_job_name: str, next_token: str) -> GetJobRunsResponseTypeDef:
    if next_token:
        return glue.get_job_runs(JobName=glue_job_name, MaxResults=JOB_RUNS_PAGE_SIZE, NextToken=next_token)
    return glue.get_job_runs(JobName=glue_job_name, MaxResults=JOB_RUNS_PAGE_SIZE)


def stop_prep_tasks(
    request: StopRequest,
    settings: PrepTaskSettings,
    *,
    ecs: ECSClient,
    sagemaker: SageMakerClient,
    retrier: Retrier,
) -> str:
    """Poll mode stop: stop the token's running tasks (each stops its Glue run on SIGTERM), then fail the step."""
    stop_errors: list[str] = []
    stopped: list[str] = []
    try:
        task_arns = _running_task_arns(ecs, settings.cluster_arn, request.token, retrier)
    except Exception as error:
        task_arns = []
        stop_errors.append(f"listing tasks: {describe_error(error)}")
    for task_arn in task_arns:
        try:
            retrier.call(
                functools.partial(
                    ecs.stop_task, cluster=settings.cluster_arn, task=task_arn, reason=STOPPED_ON_REQUEST
                ),
                description="ECS StopTask",
            )
            stopped.append(task_arn)
        except Exception as error:
            stop_errors.append(f"stopping {task_arn}: {describe_error(error)}")
    return _report_stop(request.token, stopped, stop_errors, sagemaker, retrier)


def _running_task_arns(ecs: ECSClient, cluster_arn: str, callback_token: str, retrier: Retrier) -> list[str]:
    arns: list[str] = []
    next_token = ""
    while True:
        page = retrier.call(
            functools.partial(_running_tasks_page, ecs, cluster_arn, callback_token, next_token),
            description="ECS ListTasks",
        )
        arns.extend(page.get("taskArns", []))
        next_token = page.get("nextToken", "")
        if not next_token:
            return arns


def _running_tasks_page(
    ecs: ECSClient, cluster_arn: str, callback_token: str, next_token: str
) -> ListTasksResponseTypeDef:
    if next_token:
        return ecs.list_tasks(
            cluster=cluster_arn, startedBy=callback_token, desiredStatus="RUNNING", nextToken=next_token
        )
    return ecs.list_tasks(cluster=cluster_arn, startedBy=callback_token, desiredStatus="RUNNING")


def stop_glue_runs(
    request: StopRequest,
    glue_job_name: str,
    *,
    glue: GlueClient,
    sagemaker: SageMakerClient,
    retrier: Retrier,
) -> str:
    """Events mode stop: stop the token's active Glue runs, then fail the step."""
    stop_errors: list[str] = []
    stopped: list[str] = []
    try:
        run_ids = find_job_runs_for_token(glue, glue_job_name, request.token, retrier, states=ACTIVE_STATES)
        if run_ids:
            response = retrier.call(
                lambda: glue.batch_stop_job_run(JobName=glue_job_name, JobRunIds=run_ids),
                description="Glue BatchStopJobRun",
            )
            stopped = [item.get("JobRunId", "") for item in response.get("SuccessfulSubmissions", [])]
            stop_errors.extend(
                f"stopping {item.get('JobRunId')}: {item.get('ErrorDetail', {}).get('ErrorMessage', 'unknown error')}"
                for item in response.get("Errors", [])
            )
    except Exception as error:
        stop_errors.append(describe_error(error))
    return _report_stop(request.token, stopped, stop_errors, sagemaker, retrier)


def _report_stop(
    callback_token: str, stopped: list[str], stop_errors: list[str], sagemaker: SageMakerClient, retrier: Retrier
) -> str:
    # The execution cannot finish stopping until the step is answered, so answer first...
    outcome = send_step_failure(sagemaker, callback_token, STOPPED_ON_REQUEST, retrier)
    logger.info("Stop request for token %s: stopped %s; failure callback %s", callback_token, stopped, outcome.value)
    # ...then raise so SQS redelivers the stop request and the work is stopped on a later try.
    if stop_errors:
        raise RuntimeError(f"Could not stop everything for token {callback_token}: {'; '.join(stop_errors)}")
    return f"stopped {len(stopped)} and reported '{STOPPED_ON_REQUEST}' ({outcome.value})"


def _report_start_failure(
    sagemaker: SageMakerClient, callback_token: str, what_failed: str, error: Exception, retrier: Retrier
) -> CallbackOutcome:
    logger.error("%s for token %s: %s", what_failed, callback_token, describe_error(error))
    return send_step_failure(sagemaker, callback_token, f"{what_failed}: {describe_error(error)}", retrier)
