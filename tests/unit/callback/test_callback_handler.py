"""The SQS-triggered callback handler, through lambda_handler and through its logic functions."""

from __future__ import annotations

import json
import logging
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from callback_handler.config import ConfigError, load_config
from callback_handler.logic import Clients, HandlerRun, ecs_client_token, handle_callback_message
from callback_support import (
    TOKEN,
    LambdaContextStub,
    LogRecords,
    RecordingSleep,
    StubbedClient,
    load_event,
    record_environment,
    sqs_event,
)

from pipeline_callback.callback import client_request_token
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import TokenRecords

GLUE_JOB = "taxi-prep-dev"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/taxi-prep-dev"
TASK_DEFINITION_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/taxi-prep-task-dev:3"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/taxi-prep-dev/b99d40b3ee7d4f0d9c1fd9d0bba59a6b"
EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/0a1b2c3d4e5f"
INPUT = "s3://raw-bucket-example/taxi/"
OUTPUT = "s3://prepared-bucket-example/taxi/0a1b2c3d4e5f/"
CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
POLL_ENV = {
    "COMPLETION_MODE": "poll",
    "GLUE_JOB_NAME": GLUE_JOB,
    "CLUSTER_ARN": CLUSTER_ARN,
    "TASK_DEFINITION_ARN": TASK_DEFINITION_ARN,
    "CONTAINER_NAME": "FargateTask",
    "SUBNET_IDS": "subnet-aaa, subnet-bbb",
    "SECURITY_GROUP_IDS": "sg-111",
    "ASSIGN_PUBLIC_IP": "DISABLED",
}
EVENTS_ENV = {"COMPLETION_MODE": "events", "GLUE_JOB_NAME": GLUE_JOB}


@pytest.fixture(autouse=True)
def handler_environment(monkeypatch: pytest.MonkeyPatch, token_table: str) -> None:
    """Both modes name this environment's pipeline and the (fresh, per-test) token table."""
    for environment in (POLL_ENV, EVENTS_ENV):
        monkeypatch.setitem(environment, "PIPELINE_NAME", "taxi-anomaly-dev")
        for name, value in record_environment(token_table).items():
            monkeypatch.setitem(environment, name, value)


def run_with(config: Any, ecs: Any, glue: Any, sagemaker: Any, records: TokenRecords, sleep: Any) -> HandlerRun:
    clients = Clients(ecs=ecs.client, glue=glue.client, sagemaker=sagemaker.client, records=records)
    return HandlerRun(config=config, clients=clients, retrier=Retrier(sleep=sleep, random=lambda: 1.0))


def message_body(**changes: Any) -> str:
    message = load_event("sagemaker-callback-message.json")
    message.update(changes)
    return json.dumps(message)


def stopping_body() -> str:
    return json.dumps(load_event("sagemaker-callback-stopping-message.json"))


def expected_run_task() -> dict[str, Any]:
    return {
        "cluster": CLUSTER_ARN,
        "taskDefinition": TASK_DEFINITION_ARN,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": TOKEN,
        "clientToken": ecs_client_token(TOKEN),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-aaa", "subnet-bbb"],
                "securityGroups": ["sg-111"],
                "assignPublicIp": "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": "FargateTask",
                    "environment": [
                        {"name": "inputLocation", "value": INPUT},
                        {"name": "outputLocation", "value": OUTPUT},
                        {"name": "token", "value": TOKEN},
                        {"name": "glue_job_name", "value": GLUE_JOB},
                        {"name": "pipelineExecutionArn", "value": EXECUTION_ARN},
                    ],
                }
            ]
        },
    }


def expect_task_started(ecs: StubbedClient) -> None:
    ecs.stub.add_response("run_task", {"tasks": [{"taskArn": TASK_ARN}], "failures": []}, expected_run_task())


def expect_failure_callback(sagemaker: StubbedClient, reason: str) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_failure",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


def expect_job_runs(glue: StubbedClient, runs: list[dict[str, Any]], next_token: str | None = None) -> None:
    response: dict[str, Any] = {"JobRuns": runs}
    if next_token:
        response["NextToken"] = next_token
    glue.stub.add_response("get_job_runs", response)


def job_run(run_id: str, token: str, state: str) -> dict[str, Any]:
    return {"Id": run_id, "JobName": GLUE_JOB, "JobRunState": state, "Arguments": {"--callback_token": token}}


def wire(module: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, glue: Any, sagemaker: Any, sleep: Any) -> None:
    monkeypatch.setattr(module, "dynamodb_client", WIRED_DYNAMODB[0])
    monkeypatch.setattr(module, "ecs_client", ecs.client)
    monkeypatch.setattr(module, "glue_client", glue.client)
    monkeypatch.setattr(module, "sagemaker_client", sagemaker.client)
    monkeypatch.setattr(module, "retry_sleep", sleep)


WIRED_DYNAMODB: list[Any] = []


@pytest.fixture(autouse=True)
def wired_dynamodb(dynamodb: Any) -> None:
    WIRED_DYNAMODB[:] = [dynamodb]


@pytest.fixture
def poll_handler(
    import_handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
) -> ModuleType:
    module: ModuleType = import_handler("callback_handler.handler", POLL_ENV)
    wire(module, monkeypatch, ecs, glue, sagemaker, sleep)
    return module


@pytest.fixture
def events_handler(
    import_handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
) -> ModuleType:
    module: ModuleType = import_handler("callback_handler.handler", EVENTS_ENV)
    wire(module, monkeypatch, ecs, glue, sagemaker, sleep)
    return module


# --- poll mode: starting the Fargate task -------------------------------------------------------


def test_sample_sqs_event_starts_the_prep_task(
    poll_handler: ModuleType, ecs: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given ECS starts the task
    expect_task_started(ecs)

    # When the sample SQS event arrives
    result = poll_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then RunTask got the exact request (checked by the stub) and the record succeeded
    assert result == {"batchItemFailures": []}


def test_same_message_delivered_twice_starts_one_task(
    poll_handler: ModuleType, ecs: StubbedClient, logs: LogRecords, lambda_context: LambdaContextStub
) -> None:
    # Given the same message arrives in two invocations
    expect_task_started(ecs)
    event = load_event("sqs-lambda-event.json")

    # When both are handled
    first = poll_handler.lambda_handler(event, lambda_context)
    second = poll_handler.lambda_handler(event, lambda_context)

    # Then the second is recognised from the token record: one RunTask only (the stub allows one)
    assert first == second == {"batchItemFailures": []}
    assert logs.contains("Duplicate delivery")
    assert ecs_client_token(TOKEN) == f"sagemaker-callback-{TOKEN}"
    assert len(ecs_client_token(TOKEN)) <= 64


def test_unknown_extra_fields_are_accepted(
    poll_handler: ModuleType, ecs: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given a message with extra fields
    expect_task_started(ecs)
    event = sqs_event(message_body(futureField="ignored", status="Executing"))

    # When it is handled
    result = poll_handler.lambda_handler(event, lambda_context)

    # Then the task is started as usual
    assert result == {"batchItemFailures": []}


def test_run_task_throttled_twice_then_succeeds(
    poll_handler: ModuleType, ecs: StubbedClient, sleep: RecordingSleep, lambda_context: LambdaContextStub
) -> None:
    # Given RunTask is throttled twice
    ecs.stub.add_client_error("run_task", "ThrottlingException", "Rate exceeded", expected_params=expected_run_task())
    ecs.stub.add_client_error("run_task", "ThrottlingException", "Rate exceeded", expected_params=expected_run_task())
    expect_task_started(ecs)

    # When the message is handled
    result = poll_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the task started after two backoffs and no failure was reported
    assert result == {"batchItemFailures": []}
    assert len(sleep.calls) == 2


def test_run_task_capacity_failures_fail_the_step_after_retries(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    lambda_context: LambdaContextStub,
) -> None:
    # Given Fargate has no capacity on every attempt
    for generation in range(4):
        ecs.stub.add_response(
            "run_task",
            {"tasks": [], "failures": [{"arn": TASK_DEFINITION_ARN, "reason": CAPACITY_REASON}]},
            {**expected_run_task(), "clientToken": ecs_client_token(TOKEN, generation)},
        )
    expect_failure_callback(
        sagemaker, f"Could not start the prep task: RunTaskCapacityError: RunTask failures: {CAPACITY_REASON}"
    )

    # When the message is handled
    result = poll_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the pipeline hears the capacity failure after 4 attempts (each with a fresh clientToken, so
    # ECS cannot answer a retry with its cached failure), and the record is done
    assert result == {"batchItemFailures": []}
    assert len(sleep.calls) == 3


def test_run_task_permanent_failure_fails_the_step_at_once(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    lambda_context: LambdaContextStub,
) -> None:
    # Given RunTask reports a failure retrying cannot fix
    ecs.stub.add_response(
        "run_task", {"failures": [{"arn": TASK_DEFINITION_ARN, "reason": "MISSING", "detail": "no such image"}]}
    )
    expect_failure_callback(
        sagemaker, "Could not start the prep task: RunTaskRejectedError: RunTask failures: MISSING - no such image"
    )

    # When the message is handled
    result = poll_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the step fails immediately
    assert result == {"batchItemFailures": []}
    assert sleep.calls == []


def test_run_task_client_error_fails_the_step_with_the_aws_message(
    poll_handler: ModuleType, ecs: StubbedClient, sagemaker: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given RunTask is rejected
    ecs.stub.add_client_error("run_task", "AccessDeniedException", "not authorized to perform ecs:RunTask")
    expect_failure_callback(
        sagemaker, "Could not start the prep task: AccessDeniedException: not authorized to perform ecs:RunTask"
    )

    # When / Then the pipeline hears the AWS error code and message
    assert poll_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context) == {"batchItemFailures": []}


def test_failure_that_cannot_be_reported_is_a_batch_item_failure(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    sagemaker: StubbedClient,
    logs: LogRecords,
    lambda_context: LambdaContextStub,
) -> None:
    # Given RunTask fails and SageMaker then rejects the failure callback
    ecs.stub.add_client_error("run_task", "AccessDeniedException", "denied")
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "AccessDeniedException", "denied too")
    event = load_event("sqs-lambda-event.json")

    # When the message is handled
    result = poll_handler.lambda_handler(event, lambda_context)

    # Then the record is retried rather than dropped, and the problem is logged
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert logs.contains("will be retried", logging.ERROR)


# --- messages that cannot be answered, or are answered with a failure ---------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("this is not json", id="body-not-json"),
        pytest.param(json.dumps({"arguments": {"input_location": INPUT, "output_location": OUTPUT}}), id="no-token"),
        pytest.param(message_body(token="Ab3dE5gH9"), id="token-9-chars"),
        pytest.param(message_body(token="Ab3dE5gH9k_"), id="token-not-alphanumeric"),
    ],
)
def test_message_without_a_valid_token_goes_to_the_dlq(
    poll_handler: ModuleType, logs: LogRecords, lambda_context: LambdaContextStub, body: str
) -> None:
    # Given a message nobody can answer
    event = sqs_event(body)
    message_id = event["Records"][0]["messageId"]

    # When it is handled
    result = poll_handler.lambda_handler(event, lambda_context)

    # Then it is a batch item failure (so it ends in the DLQ), logged with its message id, and no AWS call was made
    assert result == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    errors = [r for r in logs.records if r.levelno >= logging.ERROR and "cannot be answered" in r.getMessage()]
    assert errors
    assert getattr(errors[0], "message_id", None) == message_id


def test_only_the_bad_record_of_a_batch_fails(
    poll_handler: ModuleType, ecs: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given a batch with one good and one unanswerable message
    expect_task_started(ecs)
    event = sqs_event(message_body(), "not json")

    # When it is handled
    result = poll_handler.lambda_handler(event, lambda_context)

    # Then only the bad record is reported
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        pytest.param(None, "Invalid callback message: 'arguments' is missing", id="missing"),
        pytest.param({}, "Invalid callback message: 'arguments' is empty", id="empty"),
        pytest.param(
            {"input_location": "/local/path", "output_location": OUTPUT},
            "Invalid callback message: 'arguments.input_location' must be an s3://bucket/key URI, got '/local/path'",
            id="input-not-s3",
        ),
    ],
)
def test_message_with_bad_arguments_fails_the_step(
    poll_handler: ModuleType,
    sagemaker: StubbedClient,
    lambda_context: LambdaContextStub,
    arguments: Any,
    reason: str,
) -> None:
    # Given a valid token with unusable arguments
    message = load_event("sagemaker-callback-message.json")
    if arguments is None:
        del message["arguments"]
    else:
        message["arguments"] = arguments
    expect_failure_callback(sagemaker, reason)

    # When it is handled
    result = poll_handler.lambda_handler(sqs_event(json.dumps(message)), lambda_context)

    # Then the pipeline hears why, no task is started, and the record is done
    assert result == {"batchItemFailures": []}


# --- stop requests ------------------------------------------------------------------------------


def test_stopping_message_while_the_task_runs_stops_it_and_fails_the_step(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    lambda_context: LambdaContextStub,
) -> None:
    # Given the token's task is running (no start seen by this record: it is found by startedBy alone,
    # because ListTasks' startedBy "must be the only filter that you use" - issue 11, item 7)
    ecs.stub.add_response(
        "list_tasks",
        {"taskArns": [TASK_ARN]},
        {"cluster": CLUSTER_ARN, "startedBy": TOKEN},
    )
    ecs.stub.add_response(
        "stop_task",
        {"task": {"taskArn": TASK_ARN}},
        {"cluster": CLUSTER_ARN, "task": TASK_ARN, "reason": "stopped on request"},
    )
    expect_job_runs(glue, [])
    expect_failure_callback(sagemaker, "stopped on request")

    # When the stopping message arrives
    result = poll_handler.lambda_handler(sqs_event(stopping_body()), lambda_context)

    # Then the task was stopped and the pipeline heard "stopped on request"
    assert result == {"batchItemFailures": []}


def test_stopping_message_after_the_step_reported_is_harmless(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    logs: LogRecords,
    lambda_context: LambdaContextStub,
) -> None:
    # Given the task is gone and SageMaker says the token was already used
    ecs.stub.add_response("list_tasks", {"taskArns": []})
    expect_job_runs(glue, [])
    sagemaker.stub.add_client_error(
        "send_pipeline_execution_step_failure", "ConflictException", "Step is not in Executing status"
    )

    # When the stopping message arrives
    result = poll_handler.lambda_handler(sqs_event(stopping_body()), lambda_context)

    # Then nothing fails and the already-used token is logged
    assert result == {"batchItemFailures": []}
    assert logs.contains("already used", logging.WARNING)


def test_stop_that_could_not_stop_the_task_still_answers_and_retries(
    poll_handler: ModuleType,
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    lambda_context: LambdaContextStub,
) -> None:
    # Given StopTask is denied
    ecs.stub.add_response("list_tasks", {"taskArns": [TASK_ARN]})
    ecs.stub.add_client_error("stop_task", "AccessDeniedException", "denied")
    expect_job_runs(glue, [])
    expect_failure_callback(sagemaker, "stopped on request")
    event = sqs_event(stopping_body())

    # When the stopping message arrives
    result = poll_handler.lambda_handler(event, lambda_context)

    # Then the pipeline is answered, and the record is retried so the task gets stopped later
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


# --- events mode: the handler starts the Glue run itself ----------------------------------------


def expected_start_job_run() -> dict[str, Any]:
    return {
        "JobName": GLUE_JOB,
        "Arguments": {
            "--input_uri": INPUT,
            "--output_uri": OUTPUT,
            "--callback_token": TOKEN,
            "--pipeline_execution_arn": EXECUTION_ARN,
        },
    }


def test_events_mode_starts_the_glue_run(
    events_handler: ModuleType, glue: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given no run exists for the token yet
    expect_job_runs(glue, [job_run("jr_other", "Zz9yX8wV7u", "RUNNING")])
    glue.stub.add_response("start_job_run", {"JobRunId": "jr_new"}, expected_start_job_run())

    # When the sample event arrives
    result = events_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the run was started with the callback arguments
    assert result == {"batchItemFailures": []}


def test_events_mode_same_message_twice_starts_no_second_run(
    events_handler: ModuleType, glue: StubbedClient, logs: LogRecords, lambda_context: LambdaContextStub
) -> None:
    # Given a run for this token already exists (on the second page of runs)
    expect_job_runs(glue, [job_run("jr_other", "Zz9yX8wV7u", "SUCCEEDED")], next_token="page2")
    expect_job_runs(glue, [job_run("jr_first", TOKEN, "RUNNING")])

    # When the message is delivered again
    result = events_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then no StartJobRun happens (the stub would fail on it): the run is adopted
    assert result == {"batchItemFailures": []}
    assert logs.contains("jr_first already exists")


def test_events_mode_duplicate_search_is_bounded(
    events_handler: ModuleType, glue: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the job has endless pages of unrelated runs
    for page in range(5):
        expect_job_runs(glue, [job_run(f"jr_{page}", "Zz9yX8wV7u", "SUCCEEDED")], next_token=f"page{page + 1}")
    glue.stub.add_response("start_job_run", {"JobRunId": "jr_new"}, expected_start_job_run())

    # When the message is handled
    result = events_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then only 5 pages are read before the run is started
    assert result == {"batchItemFailures": []}


def test_events_mode_glue_start_throttled_then_succeeds(
    events_handler: ModuleType, glue: StubbedClient, sleep: RecordingSleep, lambda_context: LambdaContextStub
) -> None:
    # Given StartJobRun is throttled once
    expect_job_runs(glue, [])
    glue.stub.add_client_error("start_job_run", "ThrottlingException", "Rate exceeded")
    glue.stub.add_response("start_job_run", {"JobRunId": "jr_new"}, expected_start_job_run())

    # When the message is handled
    result = events_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the run started after one backoff
    assert result == {"batchItemFailures": []}
    assert len(sleep.calls) == 1


def test_events_mode_glue_start_gives_up_and_fails_the_step(
    events_handler: ModuleType,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    lambda_context: LambdaContextStub,
) -> None:
    # Given the job stays at its concurrency limit
    expect_job_runs(glue, [])
    for _ in range(4):
        glue.stub.add_client_error("start_job_run", "ConcurrentRunsExceededException", "Concurrent runs exceeded")
    expect_failure_callback(
        sagemaker, "Could not start the Glue job run: ConcurrentRunsExceededException: Concurrent runs exceeded"
    )

    # When the message is handled
    result = events_handler.lambda_handler(load_event("sqs-lambda-event.json"), lambda_context)

    # Then the pipeline hears the Glue error after the retries
    assert result == {"batchItemFailures": []}
    assert len(sleep.calls) == 3


def test_events_mode_stopping_message_stops_the_active_glue_run(
    events_handler: ModuleType, glue: StubbedClient, sagemaker: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the token has one running run (and an older finished one), another token has a running run
    expect_job_runs(
        glue,
        [
            job_run("jr_running", TOKEN, "RUNNING"),
            job_run("jr_old", TOKEN, "FAILED"),
            job_run("jr_someone_else", "Zz9yX8wV7u", "RUNNING"),
        ],
    )
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": "jr_running"}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": ["jr_running"]},
    )
    expect_failure_callback(sagemaker, "stopped on request")

    # When the stopping message arrives
    result = events_handler.lambda_handler(sqs_event(stopping_body()), lambda_context)

    # Then only the token's active run was stopped and the pipeline heard "stopped on request"
    assert result == {"batchItemFailures": []}


# --- the logic, called directly with clients (as the local mode does) ---------------------------


def test_logic_can_be_called_with_injected_clients(
    ecs: StubbedClient, glue: StubbedClient, sagemaker: StubbedClient, records: TokenRecords, sleep: RecordingSleep
) -> None:
    # Given a poll-mode config and RunTask throttled once
    config = load_config(POLL_ENV)
    ecs.stub.add_client_error("run_task", "ThrottlingException", "Rate exceeded")
    expect_task_started(ecs)

    # When the logic handles a message body with the given clients and sleep
    outcome = handle_callback_message(message_body(), run_with(config, ecs, glue, sagemaker, records, sleep))

    # Then it started the task, sleeping through the injected function
    assert outcome == f"prep task started: {TASK_ARN}"
    assert len(sleep.calls) == 1


def test_logic_reports_unexpected_errors_to_the_caller(
    ecs: StubbedClient, glue: StubbedClient, sagemaker: StubbedClient, records: TokenRecords, sleep: RecordingSleep
) -> None:
    # Given the failure callback fails for a reason other than an already-used token
    config = load_config(EVENTS_ENV)
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "InternalFailure", "oops")
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "ValidationException", "bad request")

    # When / Then the error reaches the caller (the handler turns it into a batch item failure)
    with pytest.raises(ClientError, match="ValidationException"):
        handle_callback_message(message_body(arguments={}), run_with(config, ecs, glue, sagemaker, records, sleep))


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "mode"),
    [
        pytest.param("GLUE_JOB_NAME", "events", id="glue-job-name-events"),
        pytest.param("GLUE_JOB_NAME", "poll", id="glue-job-name-poll"),
        pytest.param("CLUSTER_ARN", "poll", id="cluster"),
        pytest.param("TASK_DEFINITION_ARN", "poll", id="task-definition"),
        pytest.param("CONTAINER_NAME", "poll", id="container"),
        pytest.param("SUBNET_IDS", "poll", id="subnets"),
        pytest.param("SECURITY_GROUP_IDS", "poll", id="security-groups"),
        pytest.param("ASSIGN_PUBLIC_IP", "poll", id="assign-public-ip"),
        pytest.param("PIPELINE_NAME", "events", id="pipeline-name"),
        pytest.param("CALLBACK_TABLE_NAME", "poll", id="token-table"),
    ],
)
def test_missing_environment_variable_is_named(missing: str, mode: str) -> None:
    # Given the environment lacks one required variable
    environ = dict(POLL_ENV if mode == "poll" else EVENTS_ENV)
    environ.pop(missing)

    # When / Then loading the config names it
    with pytest.raises(ConfigError, match=missing):
        load_config(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("COMPLETION_MODE", "sometimes", id="mode"),
        pytest.param("ASSIGN_PUBLIC_IP", "yes", id="assign-public-ip"),
        pytest.param("SUBNET_IDS", " , ,", id="subnets-only-commas"),
    ],
)
def test_invalid_environment_variable_is_named(name: str, value: str) -> None:
    # Given one variable has an invalid value
    environ = {**POLL_ENV, name: value}

    # When / Then loading the config names it
    with pytest.raises(ConfigError, match=name):
        load_config(environ)


def test_defaults_to_poll_mode_and_events_mode_needs_only_the_job_name() -> None:
    # Given no COMPLETION_MODE, and an events-mode environment without the ECS variables
    # When the configs are loaded
    poll = load_config({k: v for k, v in POLL_ENV.items() if k != "COMPLETION_MODE"})
    events = load_config(EVENTS_ENV)

    # Then the first is poll mode with parsed lists, the second has no task settings
    assert poll.completion_mode == "poll"
    assert poll.prep_task is not None
    assert poll.prep_task.subnet_ids == ("subnet-aaa", "subnet-bbb")
    assert events.completion_mode == "events"
    assert events.prep_task is None


def test_cold_start_fails_clearly_when_configuration_is_missing(
    import_handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CLUSTER_ARN is missing in poll mode
    monkeypatch.delenv("CLUSTER_ARN", raising=False)
    environment = {k: v for k, v in POLL_ENV.items() if k != "CLUSTER_ARN"}

    # When / Then importing the handler (the cold start) fails naming the variable
    with pytest.raises(ConfigError, match="CLUSTER_ARN"):
        import_handler("callback_handler.handler", environment)
