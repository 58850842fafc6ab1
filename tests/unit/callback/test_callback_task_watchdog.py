"""The watchdog: fail the step when the prep task stopped without reporting."""

from __future__ import annotations

import copy
import logging
from types import ModuleType
from typing import Any

import pytest
from callback_support import TOKEN, LambdaContextStub, LogRecords, RecordingSleep, StubbedClient, load_event
from task_watchdog.logic import ConfigError, handle_task_state_change, load_config

from pipeline_callback.callback import client_request_token
from pipeline_callback.retry import Retrier

CONTAINER = "FargateTask"
OOM_REASON = (
    "Prep task stopped before reporting: OutOfMemoryError: Container killed due to memory usage "
    "(exit 137; Essential container in task exited; stop code EssentialContainerExited)"
)


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
        {"PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e"},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


@pytest.fixture
def watchdog(
    import_handler: Any, monkeypatch: pytest.MonkeyPatch, sagemaker: StubbedClient, sleep: RecordingSleep
) -> ModuleType:
    module: ModuleType = import_handler("task_watchdog.handler", {"CONTAINER_NAME": CONTAINER})
    monkeypatch.setattr(module, "sagemaker_client", sagemaker.client)
    monkeypatch.setattr(module, "retrier", Retrier(sleep=sleep, random=lambda: 1.0))
    return module


def test_oom_killed_task_fails_the_step(
    watchdog: ModuleType, sagemaker: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the sample event: the container was OOM-killed before reporting
    expect_failure(sagemaker, OOM_REASON)

    # When the watchdog handles it
    result = watchdog.lambda_handler(load_event("ecs-task-state-change-stopped.json"), lambda_context)

    # Then the pipeline hears why the task died
    assert result["outcome"] == f"failure reported (delivered): {OOM_REASON}"


def test_task_that_already_reported_is_left_alone(
    watchdog: ModuleType, logs: LogRecords, lambda_context: LambdaContextStub
) -> None:
    # Given the container exited 0 (it sent its own callback)
    event = stopped_event(exitCode=0, reason=None)

    # When the watchdog handles it
    result = watchdog.lambda_handler(event, lambda_context)

    # Then no callback is sent (the stub would fail on one) and it is logged
    assert result["outcome"] == "task reported itself"
    assert logs.contains("exited 0")


def test_task_that_never_started_a_container_fails_the_step(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given a placement failure: no exit code, no container reason
    event = stopped_event(exitCode=None, reason=None)
    event["detail"]["stopCode"] = "TaskFailedToStart"
    event["detail"]["stoppedReason"] = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    expected = (
        "Prep task stopped before reporting: CannotPullContainerError: pull image manifest has been retried 5 time(s) "
        "(no exit code; stop code TaskFailedToStart)"
    )
    expect_failure(sagemaker, expected)

    # When / Then the failure names the stop reason and code
    outcome = handle_task_state_change(event, CONTAINER, sagemaker=sagemaker.client, retrier=retrier)
    assert outcome == f"failure reported (delivered): {expected}"


def test_task_stopped_by_a_user_fails_the_step(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given someone stopped the task (SIGKILL after the grace period: exit 137, no container reason)
    event = stopped_event(exitCode=137, reason=None)
    event["detail"]["stopCode"] = "UserInitiated"
    event["detail"]["stoppedReason"] = "Task stopped by user"
    expected = "Prep task stopped before reporting: Task stopped by user (exit 137; stop code UserInitiated)"
    expect_failure(sagemaker, expected)

    # When / Then the failure is reported
    assert handle_task_state_change(event, CONTAINER, sagemaker=sagemaker.client, retrier=retrier).startswith(
        "failure reported"
    )


def test_already_used_token_is_harmless(sagemaker: StubbedClient, retrier: Retrier, logs: LogRecords) -> None:
    # Given the task crashed after the step was already answered
    sagemaker.stub.add_client_error(
        "send_pipeline_execution_step_failure", "ConflictException", "Step is not in Executing status"
    )

    # When the watchdog handles the stop
    outcome = handle_task_state_change(stopped_event(), CONTAINER, sagemaker=sagemaker.client, retrier=retrier)

    # Then nothing raises and it is logged
    assert outcome.startswith("failure reported (already_reported)")
    assert logs.contains("already used", logging.WARNING)


def test_event_without_a_token_is_logged_and_ignored(
    sagemaker: StubbedClient, retrier: Retrier, logs: LogRecords
) -> None:
    # Given a stopped task of some other container/task family (no token in the overrides)
    event = stopped_event()
    event["detail"]["overrides"] = {"containerOverrides": [{"name": "SomethingElse", "environment": []}]}

    # When / Then nothing is sent and the skip is logged
    assert handle_task_state_change(event, CONTAINER, sagemaker=sagemaker.client, retrier=retrier) == (
        "ignored: no callback token"
    )
    assert logs.contains("has no callback token")


def test_task_not_yet_stopped_is_ignored(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given a RUNNING task state change
    event = stopped_event()
    event["detail"]["lastStatus"] = "RUNNING"

    # When / Then nothing is sent
    outcome = handle_task_state_change(event, CONTAINER, sagemaker=sagemaker.client, retrier=retrier)
    assert outcome.startswith("ignored: task")


def test_watchdog_requires_container_name() -> None:
    # Given / When / Then a missing CONTAINER_NAME is named
    with pytest.raises(ConfigError, match="CONTAINER_NAME"):
        load_config({})
