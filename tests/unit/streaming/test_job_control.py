"""Custom resource that starts/stops the Glue streaming job, against a stubbed Glue client."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from streaming_job_control.logic import StopTimeoutError, WaitPolicy, handle_event

JOB = "metrics-streaming"
POLICY = WaitPolicy(timeout_seconds=60, poll_seconds=15)


@pytest.fixture
def glue(aws_env: None) -> Any:
    return boto3.client("glue", region_name="eu-west-1")


@pytest.fixture
def stub(glue: Any) -> Iterator[Stubber]:
    with Stubber(glue) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def runs(*states: str) -> dict[str, Any]:
    return {"JobRuns": [{"Id": f"jr_{i}", "JobName": JOB, "JobRunState": s} for i, s in enumerate(states)]}


def event(request_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResourceProperties": {"ServiceToken": "arn:token", "JobName": JOB, "Arguments": {"--window": "60"}},
        **extra,
    }


def not_found(stub: Stubber, method: str) -> None:
    stub.add_client_error(method, service_error_code="EntityNotFoundException", http_status_code=400)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_create_starts_a_run_when_none_is_active(glue: Any, stub: Stubber) -> None:
    # Given only finished runs
    stub.add_response("get_job_runs", runs("SUCCEEDED", "FAILED"), {"JobName": JOB})
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB, "Arguments": {"--window": "60"}})

    # When the resource is created
    response = handle_event(event("Create"), glue, policy=POLICY)

    # Then one run was started with the arguments and its id is returned
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}", "Data": {"JobRunId": "jr_new"}}


@pytest.mark.parametrize("state", ["RUNNING", "STARTING", "WAITING"])
def test_create_does_not_start_a_second_run(glue: Any, stub: Stubber, state: str) -> None:
    # Given an active run (no start_job_run is stubbed, so calling it would fail the test)
    stub.add_response("get_job_runs", runs(state), {"JobName": JOB})

    # When the resource is created
    response = handle_event(event("Create"), glue, policy=POLICY)

    # Then the active run is reported
    assert response["Data"] == {"JobRunId": "jr_0"}


def test_delete_stops_active_runs_and_waits_until_they_stopped(glue: Any, stub: Stubber) -> None:
    # Given two active runs that take one poll to stop
    stub.add_response("get_job_runs", runs("RUNNING", "WAITING", "SUCCEEDED"), {"JobName": JOB})
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": JOB, "JobRunId": "jr_0"}, {"JobName": JOB, "JobRunId": "jr_1"}]},
        {"JobName": JOB, "JobRunIds": ["jr_0", "jr_1"]},
    )
    stub.add_response("get_job_runs", runs("STOPPING", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    stub.add_response("get_job_runs", runs("STOPPED", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    clock = FakeClock()

    # When the resource is deleted
    response = handle_event(
        event("Delete", PhysicalResourceId=f"streaming-job-{JOB}"),
        glue,
        policy=POLICY,
        sleep=clock.sleep,
        clock=clock.time,
    )

    # Then both were stopped, with one wait in between, and the delete succeeds
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}"}
    assert clock.sleeps == [15]


def test_delete_fails_when_runs_do_not_stop_in_time(glue: Any, stub: Stubber) -> None:
    # Given a run that never stops
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})
    stub.add_response("batch_stop_job_run", {}, {"JobName": JOB, "JobRunIds": ["jr_0"]})
    for _ in range(5):
        stub.add_response("get_job_runs", runs("STOPPING"), {"JobName": JOB})
    clock = FakeClock()

    # When deleting with a 60 s budget
    with pytest.raises(StopTimeoutError, match="jr_0"):
        handle_event(event("Delete"), glue, policy=POLICY, sleep=clock.sleep, clock=clock.time)

    # Then it waited within the budget and no longer
    assert sum(clock.sleeps) <= 60


def test_delete_succeeds_when_the_job_no_longer_exists(glue: Any, stub: Stubber) -> None:
    not_found(stub, "get_job_runs")
    response = handle_event(event("Delete", PhysicalResourceId="streaming-job-x"), glue, policy=POLICY)
    assert response == {"PhysicalResourceId": "streaming-job-x"}


def test_delete_with_nothing_running_makes_no_stop_call(glue: Any, stub: Stubber) -> None:
    stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": JOB})
    assert handle_event(event("Delete"), glue, policy=POLICY) == {"PhysicalResourceId": f"streaming-job-{JOB}"}


def test_update_to_another_job_stops_the_old_runs_first(glue: Any, stub: Stubber) -> None:
    # Given the old job running and the new one idle
    old_properties = {"JobName": "old-job", "Arguments": {"--window": "60"}}
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": "old-job"})
    stub.add_response("batch_stop_job_run", {}, {"JobName": "old-job", "JobRunIds": ["jr_0"]})
    stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": "old-job"})
    stub.add_response("get_job_runs", {"JobRuns": []}, {"JobName": JOB})
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB, "Arguments": {"--window": "60"}})

    # When the resource is updated
    response = handle_event(
        event("Update", OldResourceProperties=old_properties, PhysicalResourceId="streaming-job-old-job"),
        glue,
        policy=POLICY,
        sleep=lambda _: None,
    )

    # Then the new job runs under a new physical id (CloudFormation then deletes the old one)
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}", "Data": {"JobRunId": "jr_new"}}


def test_unchanged_update_keeps_the_running_run(glue: Any, stub: Stubber) -> None:
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})
    same = event("Update", OldResourceProperties=event("Create")["ResourceProperties"])
    assert handle_event(same, glue, policy=POLICY)["Data"] == {"JobRunId": "jr_0"}


def test_create_without_a_job_name_is_refused(glue: Any) -> None:
    with pytest.raises(ValueError, match="JobName"):
        handle_event({"RequestType": "Create", "ResourceProperties": {}}, glue, policy=POLICY)


def test_on_event_uses_the_module_client(aws_env: None, lambda_context: Any) -> None:
    # Given the handler module with its Glue client stubbed
    sys.modules.pop("streaming_job_control.handler", None)
    handler = importlib.import_module("streaming_job_control.handler")
    with Stubber(handler.GLUE) as stubber:
        stubber.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})

        # When CloudFormation creates the resource
        response = handler.on_event(event("Create"), lambda_context)

    # Then the running run is reported
    assert response["Data"] == {"JobRunId": "jr_0"}
