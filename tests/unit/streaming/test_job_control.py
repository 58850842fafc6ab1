"""Custom resource that starts, restarts on change and stops the Glue streaming job (botocore Stubber: its own
parameter validation runs on every call)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from streaming_job_control.logic import StopTimeoutError, WaitPolicy, handle_event

JOB = "metrics-streaming"
POLICY = WaitPolicy(timeout_seconds=60, poll_seconds=15)
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WITH_GENERATOR = {"Mode": "with_generator", "GeneratorRuleName": "gen"}


@pytest.fixture
def glue(aws_env: None) -> Any:
    return boto3.client("glue", region_name="eu-west-1")


@pytest.fixture
def stub(glue: Any) -> Iterator[Stubber]:
    with Stubber(glue) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def events(aws_env: None) -> Any:
    return boto3.client("events", region_name="eu-west-1")


def runs(*states: str) -> dict[str, Any]:
    return {"JobRuns": [{"Id": f"jr_{i}", "JobName": JOB, "JobRunState": s} for i, s in enumerate(states)]}


def properties(**overrides: Any) -> dict[str, Any]:
    return {
        "ServiceToken": "arn:token",
        "JobName": JOB,
        "RunConfigHash": "hash-1",
        "Watched": {"--output_uri": "s3://bucket/metrics/intervals/"},
        "RunPolicy": {"Mode": "always"},
        **overrides,
    }


def event(request_type: str, **extra: Any) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": properties(), **extra}


def handle(event_: dict[str, Any], glue: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", lambda: NOON)
    kwargs.setdefault("sleep", lambda _: None)
    return handle_event(event_, glue, policy=POLICY, **kwargs)


def stub_stop_of_one_run(stub: Stubber, job_name: str) -> None:
    """Stop jr_0, see it stopped, and look once more after a poll."""
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": job_name})
    stub.add_response("batch_stop_job_run", {}, {"JobName": job_name, "JobRunIds": ["jr_0"]})
    for _ in range(3):
        stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": job_name})


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_create_starts_a_run_with_the_jobs_own_arguments(glue: Any, stub: Stubber) -> None:
    # Given only finished runs
    stub.add_response("get_job_runs", runs("SUCCEEDED", "FAILED"), {"JobName": JOB})
    # Then the start passes no Arguments: the run takes the job's (just deployed) default arguments
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})

    # When the resource is created
    response = handle(event("Create"), glue)

    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}", "Data": {"JobRunId": "jr_new"}}


@pytest.mark.parametrize("state", ["RUNNING", "STARTING", "WAITING"])
def test_create_does_not_start_a_second_run(glue: Any, stub: Stubber, state: str) -> None:
    # Given an active run (no start_job_run is stubbed, so calling it would fail the test)
    stub.add_response("get_job_runs", runs(state), {"JobName": JOB})
    assert handle(event("Create"), glue)["Data"] == {"JobRunId": "jr_0"}


def test_a_start_that_races_another_starter_reports_that_run(glue: Any, stub: Stubber) -> None:
    # Given the supervisor starting a run between our look and our start
    stub.add_response("get_job_runs", runs(), {"JobName": JOB})
    stub.add_client_error("start_job_run", service_error_code="ConcurrentRunsExceededException", http_status_code=400)
    stub.add_response("get_job_runs", runs("STARTING"), {"JobName": JOB})
    assert handle(event("Create"), glue)["Data"] == {"JobRunId": "jr_0"}


def test_create_with_the_generator_disabled_starts_nothing(glue: Any, stub: Stubber, events: Any) -> None:
    # Given run mode with_generator and the generator's schedule disabled (prod's default)
    create = event("Create", ResourceProperties=properties(RunPolicy=WITH_GENERATOR))
    with Stubber(events) as events_stub:
        events_stub.add_response("describe_rule", {"Name": "gen", "State": "DISABLED"}, {"Name": "gen"})
        stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": JOB})

        # When the resource is created
        response = handle(create, glue, events=events)

    # Then no run is started: nothing bills until the generator is switched on
    assert response["Data"] == {"JobRunId": ""}


def test_create_with_the_generator_enabled_starts_the_job(glue: Any, stub: Stubber, events: Any) -> None:
    create = event("Create", ResourceProperties=properties(RunPolicy=WITH_GENERATOR))
    with Stubber(events) as events_stub:
        events_stub.add_response("describe_rule", {"Name": "gen", "State": "ENABLED"}, {"Name": "gen"})
        stub.add_response("get_job_runs", runs(), {"JobName": JOB})
        stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})
        assert handle(create, glue, events=events)["Data"] == {"JobRunId": "jr_new"}


def test_a_deploy_outside_the_active_hours_stops_the_run(glue: Any, stub: Stubber) -> None:
    # Given active hours 08-18 UTC, a deploy at 20:00 and a run still going
    update = event(
        "Update",
        ResourceProperties=properties(RunPolicy={"Mode": "active_hours", "ActiveHoursUtc": "8-18"}),
        OldResourceProperties=properties(),
    )
    stub_stop_of_one_run(stub, JOB)

    # When the resource is updated
    response = handle(update, glue, now=lambda: datetime(2026, 11, 25, 20, 0, tzinfo=UTC))

    # Then the run is stopped and none is started
    assert response["Data"] == {"JobRunId": ""}


@pytest.mark.parametrize(
    "changed",
    [
        {"RunConfigHash": "hash-2"},  # new script, arguments, frequency or capacity
        {"Watched": {"--output_uri": "s3://other-bucket/metrics/intervals/"}},  # a deploy-time value changed
    ],
    ids=["script-or-settings", "deploy-time-value"],
)
def test_an_update_that_changes_what_runs_restarts_the_job(glue: Any, stub: Stubber, changed: dict[str, Any]) -> None:
    # Given the job running the old version
    update = event("Update", ResourceProperties=properties(**changed), OldResourceProperties=properties())
    stub_stop_of_one_run(stub, JOB)
    stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": JOB})
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})

    # When CloudFormation updates the resource
    response = handle(update, glue)

    # Then the old run was stopped and a new one started (with the updated job definition)
    assert response["Data"] == {"JobRunId": "jr_new"}


def test_an_unchanged_update_keeps_the_running_run(glue: Any, stub: Stubber) -> None:
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})
    same = event("Update", OldResourceProperties=properties())
    assert handle(same, glue)["Data"] == {"JobRunId": "jr_0"}


def test_update_to_another_job_stops_the_old_runs_first(glue: Any, stub: Stubber) -> None:
    old_properties = properties(JobName="old-job")
    stub_stop_of_one_run(stub, "old-job")
    stub.add_response("get_job_runs", {"JobRuns": []}, {"JobName": JOB})
    stub.add_response("start_job_run", {"JobRunId": "jr_new"}, {"JobName": JOB})

    response = handle(
        event("Update", OldResourceProperties=old_properties, PhysicalResourceId="streaming-job-old-job"), glue
    )

    # Then the new job runs under a new physical id (CloudFormation then deletes the old one)
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}", "Data": {"JobRunId": "jr_new"}}


def test_delete_stops_active_runs_and_waits_until_they_stopped(glue: Any, stub: Stubber) -> None:
    # Given two active runs that take one poll to stop
    stub.add_response("get_job_runs", runs("RUNNING", "WAITING", "SUCCEEDED"), {"JobName": JOB})
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": JOB, "JobRunId": "jr_0"}, {"JobName": JOB, "JobRunId": "jr_1"}]},
        {"JobName": JOB, "JobRunIds": ["jr_0", "jr_1"]},
    )
    stub.add_response("get_job_runs", runs("STOPPING", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    # (after one poll: nothing new to stop, and none left)
    stub.add_response("get_job_runs", runs("STOPPED", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    stub.add_response("get_job_runs", runs("STOPPED", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    # (one more look after another poll, for a run started meanwhile)
    stub.add_response("get_job_runs", runs("STOPPED", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    stub.add_response("get_job_runs", runs("STOPPED", "STOPPED", "SUCCEEDED"), {"JobName": JOB})
    clock = FakeClock()

    # When the resource is deleted
    response = handle(
        event("Delete", PhysicalResourceId=f"streaming-job-{JOB}"), glue, sleep=clock.sleep, clock=clock.time
    )

    # Then both were stopped and the delete succeeds once nothing runs
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}"}
    assert clock.sleeps == [15, 15]


def test_delete_also_stops_a_run_that_started_while_it_waited(glue: Any, stub: Stubber) -> None:
    # Given a supervisor invocation already in flight that starts jr_1 just after the delete stopped jr_0
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})
    stub.add_response("batch_stop_job_run", {}, {"JobName": JOB, "JobRunIds": ["jr_0"]})
    stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": JOB})
    late_start = {"JobRuns": [{"Id": "jr_0", "JobRunState": "STOPPED"}, {"Id": "jr_1", "JobRunState": "STARTING"}]}
    stub.add_response("get_job_runs", late_start, {"JobName": JOB})
    stub.add_response("batch_stop_job_run", {}, {"JobName": JOB, "JobRunIds": ["jr_1"]})
    all_stopped = {"JobRuns": [{"Id": "jr_0", "JobRunState": "STOPPED"}, {"Id": "jr_1", "JobRunState": "STOPPED"}]}
    for _ in range(3):
        stub.add_response("get_job_runs", all_stopped, {"JobName": JOB})

    # When the resource is deleted
    response = handle(event("Delete"), glue)

    # Then the late run was stopped as well before the delete reported success
    assert response == {"PhysicalResourceId": f"streaming-job-{JOB}"}


def test_delete_fails_when_runs_do_not_stop_in_time(glue: Any, stub: Stubber) -> None:
    stub.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})
    stub.add_response("batch_stop_job_run", {}, {"JobName": JOB, "JobRunIds": ["jr_0"]})
    for _ in range(9):  # two looks per poll, five polls in the 60 s budget
        stub.add_response("get_job_runs", runs("STOPPING"), {"JobName": JOB})
    clock = FakeClock()

    with pytest.raises(StopTimeoutError, match="jr_0"):
        handle(event("Delete"), glue, sleep=clock.sleep, clock=clock.time)

    assert sum(clock.sleeps) <= 60


def test_delete_succeeds_when_the_job_no_longer_exists(glue: Any, stub: Stubber) -> None:
    stub.add_client_error("get_job_runs", service_error_code="EntityNotFoundException", http_status_code=400)
    response = handle(event("Delete", PhysicalResourceId="streaming-job-x"), glue)
    assert response == {"PhysicalResourceId": "streaming-job-x"}


def test_delete_with_nothing_running_makes_no_stop_call(glue: Any, stub: Stubber) -> None:
    stub.add_response("get_job_runs", runs("STOPPED"), {"JobName": JOB})
    assert handle(event("Delete"), glue) == {"PhysicalResourceId": f"streaming-job-{JOB}"}


def test_create_without_a_job_name_is_refused(glue: Any) -> None:
    with pytest.raises(ValueError, match="JobName"):
        handle({"RequestType": "Create", "ResourceProperties": {}}, glue)


def test_on_event_uses_the_module_clients(aws_env: None, lambda_context: Any) -> None:
    # Given the handler module with its Glue client stubbed
    sys.modules.pop("streaming_job_control.handler", None)
    handler = importlib.import_module("streaming_job_control.handler")
    with Stubber(handler.GLUE) as stubber:
        stubber.add_response("get_job_runs", runs("RUNNING"), {"JobName": JOB})

        # When CloudFormation creates the resource
        response = handler.on_event(event("Create"), lambda_context)

    # Then the running run is reported
    assert response["Data"] == {"JobRunId": "jr_0"}
