"""The watchdog: a stopped prep task's step gets its true outcome, and its Glue run does not outlive it."""

from __future__ import annotations

import copy
import logging
from types import ModuleType
from typing import Any

import pytest
from callback_support import (
    TOKEN,
    LambdaContextStub,
    LogRecords,
    RecordingSleep,
    StubbedClient,
    load_event,
    record_environment,
)
from task_watchdog.logic import ConfigError, WatchdogClients, WatchdogConfig, handle_task_state_change, load_config

from pipeline_callback.callback import client_request_token
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import RecordSettings, TokenRecords

CONTAINER = "FargateTask"
GLUE_JOB = "taxi-prep-dev"
RUN_ID = "jr_0123456789abcdef"
OUTPUT = "s3://prepared-bucket-example/taxi/0a1b2c3d4e5f/"
OOM_REASON = (
    "Prep task stopped before reporting: OutOfMemoryError: Container killed due to memory usage "
    "(exit 137; Essential container in task exited; stop code EssentialContainerExited)"
)
EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/0a1b2c3d4e5f"


def stopped_event(**container_changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ecs-task-state-change-stopped.json"))
    container = event["detail"]["containers"][0]
    for key, value in container_changes.items():
        if value is None:
            container.pop(key, None)
        else:
            container[key] = value
    return event


def expect_failure(sagemaker: StubbedClient, reason: str) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_failure",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


def expect_success(sagemaker: StubbedClient) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_success",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "CallbackToken": TOKEN,
            "OutputParameters": success_output_parameters(OUTPUT),
            "ClientRequestToken": client_request_token(TOKEN, "success"),
        },
    )


def expect_runs(glue: StubbedClient, *states: str) -> None:
    runs = [
        {
            "Id": f"{RUN_ID}{i}",
            "JobName": GLUE_JOB,
            "JobRunState": state,
            "Arguments": {"--callback_token": TOKEN, "--output_uri": OUTPUT},
        }
        for i, state in enumerate(states)
    ]
    glue.stub.add_response("get_job_runs", {"JobRuns": runs}, {"JobName": GLUE_JOB, "MaxResults": 200})


def expect_stop(glue: StubbedClient, run_id: str) -> None:
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": run_id}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": [run_id]},
    )


@pytest.fixture
def config(token_table: str) -> WatchdogConfig:
    return WatchdogConfig(
        container_name=CONTAINER,
        glue_job_name=GLUE_JOB,
        records=RecordSettings(table_name=token_table, deadline_seconds=3600, ttl_seconds=86400, lease_seconds=120),
    )


@pytest.fixture
def clients(sagemaker: StubbedClient, glue: StubbedClient, records: TokenRecords) -> WatchdogClients:
    return WatchdogClients(sagemaker=sagemaker.client, glue=glue.client, records=records)


@pytest.fixture
def watchdog(
    import_handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    clients: WatchdogClients,
    sleep: RecordingSleep,
    token_table: str,
) -> ModuleType:
    module: ModuleType = import_handler(
        "task_watchdog.handler",
        {"CONTAINER_NAME": CONTAINER, "GLUE_JOB_NAME": GLUE_JOB, **record_environment(token_table)},
    )
    monkeypatch.setattr(module, "clients", clients)
    monkeypatch.setattr(module, "retry_sleep", sleep)
    return module


def test_oom_killed_task_before_glue_started_fails_the_step(
    watchdog: ModuleType, sagemaker: StubbedClient, glue: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the sample event: the container was OOM-killed before it started a Glue run
    expect_runs(glue)
    expect_failure(sagemaker, OOM_REASON)

    # When the watchdog handles it
    result = watchdog.lambda_handler(load_event("ecs-task-state-change-stopped.json"), lambda_context)

    # Then the pipeline hears why the task died
    assert result["outcome"] == f"failure reported (failure delivered by task-watchdog): {OOM_REASON}"


def test_killed_task_stops_its_running_glue_run_and_fails_the_step(
    sagemaker: StubbedClient, glue: StubbedClient, clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier
) -> None:
    # Issue 11, item 5: the watchdog failed the step but left the Glue run going for up to 2 hours.
    # Given the task was killed while its Glue run was RUNNING (found by the token on the run)
    expect_runs(glue, "RUNNING")
    expect_stop(glue, f"{RUN_ID}0")
    expect_failure(sagemaker, f"{OOM_REASON}; Glue job run {RUN_ID}0 was asked to stop")

    # When the watchdog handles the stop
    outcome = handle_task_state_change(stopped_event(), config, clients, retrier)

    # Then the run is stopped (the stub asserts BatchStopJobRun) and the step fails saying so
    assert "was asked to stop" in outcome
    record = clients.records.get(TOKEN)
    assert record is not None and record.outcome == "failure" and record.reported
    assert record.is_open  # the reconciler confirms the run really stopped, then closes the record


def test_task_killed_after_glue_succeeded_reports_the_success(
    sagemaker: StubbedClient, glue: StubbedClient, clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier
) -> None:
    # Issue 11, item 5: the step was failed although the work was done.
    # Given the Glue run SUCCEEDED and the task died before reporting it
    expect_runs(glue, "SUCCEEDED")
    expect_success(sagemaker)

    # When / Then the step succeeds with the run's outputs
    outcome = handle_task_state_change(stopped_event(), config, clients, retrier)
    assert outcome.startswith(f"success reported for Glue run {RUN_ID}0")


def test_success_the_task_could_not_deliver_is_delivered_not_failed(
    sagemaker: StubbedClient, glue: StubbedClient, clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier
) -> None:
    # Issue 11, item 1: a success that met a network outage made the task exit 1, and the watchdog then
    # failed a step whose work had succeeded.
    # Given the task decided success (recorded) but could not deliver it, then exited 1
    clients.records.decide(TOKEN, outcome="success", outputs=success_output_parameters(OUTPUT), decided_by="prep-task")
    clients.records.record_glue_run(TOKEN, f"{RUN_ID}0")
    glue.stub.add_response(
        "get_job_run",
        {"JobRun": {"Id": f"{RUN_ID}0", "JobRunState": "SUCCEEDED", "Arguments": {"--output_uri": OUTPUT}}},
        {"JobName": GLUE_JOB, "RunId": f"{RUN_ID}0"},
    )
    expect_success(sagemaker)

    # When the watchdog sees the task stop with exit 1
    outcome = handle_task_state_change(stopped_event(exitCode=1, reason=None), config, clients, retrier)

    # Then the recorded success is what SageMaker gets
    assert outcome == "delivered the task's recorded outcome: success delivered by task-watchdog"


def test_task_that_already_reported_is_left_alone(
    glue: StubbedClient, clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier, logs: LogRecords
) -> None:
    # Given the task reported its failure itself and its Glue run has ended
    clients.records.decide(TOKEN, outcome="failure", reason="boom", decided_by="prep-task")
    clients.records.mark_reported(TOKEN, note="failure delivered", work_ended=False)
    expect_runs(glue, "FAILED")

    # When the watchdog handles its stop
    outcome = handle_task_state_change(stopped_event(exitCode=0, reason=None), config, clients, retrier)

    # Then no callback is sent (the stub would fail on one) and the record is closed
    assert outcome == "task reported itself"
    record = clients.records.get(TOKEN)
    assert record is not None and not record.is_open


def test_task_that_never_started_a_container_fails_the_step(
    sagemaker: StubbedClient, glue: StubbedClient, clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier
) -> None:
    # Given a placement failure: no exit code, no container reason
    event = stopped_event(exitCode=None, reason=None)
    event["detail"]["stopCode"] = "TaskFailedToStart"
    event["detail"]["stoppedReason"] = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    expected = (
        "Prep task stopped before reporting: CannotPullContainerError: pull image manifest has been retried 5 time(s) "
        "(no exit code; stop code TaskFailedToStart)"
    )
    expect_runs(glue)
    expect_failure(sagemaker, expected)

    # When / Then the failure names the stop reason and code
    outcome = handle_task_state_change(event, config, clients, retrier)
    assert outcome == f"failure reported (failure delivered by task-watchdog): {expected}"


def test_already_used_token_is_harmless(
    sagemaker: StubbedClient,
    glue: StubbedClient,
    clients: WatchdogClients,
    config: WatchdogConfig,
    retrier: Retrier,
    logs: LogRecords,
) -> None:
    # Given SageMaker says the step no longer waits (stopped from the console, say)
    expect_runs(glue)
    sagemaker.stub.add_client_error(
        "send_pipeline_execution_step_failure", "ConflictException", "Step is not in Executing status"
    )

    # When the watchdog handles the stop
    outcome = handle_task_state_change(stopped_event(), config, clients, retrier)

    # Then nothing raises and it is logged
    assert outcome.startswith("failure reported (failure already_reported by task-watchdog)")
    assert logs.contains("already used", logging.WARNING)


def test_event_without_a_token_is_logged_and_ignored(
    clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier, logs: LogRecords
) -> None:
    # Given a stopped task of some other container/task family (no token in the overrides)
    event = stopped_event()
    event["detail"]["overrides"] = {"containerOverrides": [{"name": "SomethingElse", "environment": []}]}

    # When / Then nothing is sent and the skip is logged
    assert handle_task_state_change(event, config, clients, retrier) == "ignored: no callback token"
    assert logs.contains("has no callback token")


def test_task_not_yet_stopped_is_ignored(clients: WatchdogClients, config: WatchdogConfig, retrier: Retrier) -> None:
    event = stopped_event()
    event["detail"]["lastStatus"] = "RUNNING"
    assert handle_task_state_change(event, config, clients, retrier).startswith("ignored: task")


def test_watchdog_requires_its_settings() -> None:
    with pytest.raises(ConfigError, match="CONTAINER_NAME"):
        load_config({"GLUE_JOB_NAME": GLUE_JOB, **record_environment("t")})
    with pytest.raises(ConfigError, match="CALLBACK_TABLE_NAME"):
        load_config({"CONTAINER_NAME": CONTAINER, "GLUE_JOB_NAME": GLUE_JOB})
