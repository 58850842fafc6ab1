"""The streaming job's supervisor and run policy (botocore Stubber: parameters are validated on every call)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from streaming_job_control.config import ConfigError, load_config
from streaming_job_control.run_policy import RunPolicy, decide, in_active_hours
from streaming_job_control.supervisor import CloudWatchMetricsSink, SupervisorSettings, supervise

JOB = "metrics-streaming"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALWAYS = SupervisorSettings(
    job_name=JOB,
    policy=RunPolicy("always"),
    glue_max_retries=1,
    failure_limit=3,
    failure_window=timedelta(hours=6),
    restart_grace=timedelta(minutes=3),
)


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


def run(run_id: str, state: str, ended_minutes_ago: float | None = None, attempt: int = 0) -> dict[str, Any]:
    started = NOW - timedelta(minutes=(ended_minutes_ago or 0) + 30)
    record: dict[str, Any] = {"Id": run_id, "JobName": JOB, "JobRunState": state, "Attempt": attempt}
    record["StartedOn"] = started
    if ended_minutes_ago is not None:
        record["CompletedOn"] = NOW - timedelta(minutes=ended_minutes_ago)
        record["ErrorMessage"] = f"{run_id} broke"
    return record


def job_runs(stub: Stubber, *runs: dict[str, Any]) -> None:
    stub.add_response("get_job_runs", {"JobRuns": list(runs)}, {"JobName": JOB})


def state_change(state: str, job_name: str = JOB) -> dict[str, Any]:
    return {
        "detail-type": "Glue Job State Change",
        "source": "aws.glue",
        "detail": {"jobName": job_name, "jobRunId": "jr_old", "state": state, "message": "boom"},
    }


def check(glue: Any, metrics: Any, settings: SupervisorSettings = ALWAYS, **kwargs: Any) -> Any:
    events = kwargs.pop("events", None)
    return supervise(glue=glue, events=events, metrics=metrics, settings=settings, now=NOW, **kwargs)


def last_metrics(metrics: Any) -> dict[str, float]:
    values, timestamp = metrics.calls[-1]
    assert timestamp == NOW
    return values


def test_a_running_job_is_left_alone(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "RUNNING"), run("jr_0", "FAILED", ended_minutes_ago=60))
    report = check(glue, metrics)
    assert (report.action, report.active_run_id) == ("none", "jr_1")
    assert last_metrics(metrics) == {
        "JobDesired": 1,
        "JobDown": 0,
        "RunsStarted": 0,
        "RunsStopped": 0,
        "GaveUp": 0,
        "UnexpectedRunEnd": 0,
    }


def test_a_failed_run_that_glue_will_not_retry_is_restarted_at_once(glue: Any, stub: Stubber, metrics: Any) -> None:
    # Given a run that failed on its last allowed attempt (MaxRetries 1), reported by Glue's state-change event
    job_runs(stub, run("jr_1", "FAILED", ended_minutes_ago=0.5, attempt=1))
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, {"JobName": JOB})

    # When the supervisor handles the event
    report = check(glue, metrics, trigger=state_change("FAILED"))

    # Then it starts a run with the job's own arguments, and the end is counted for the alarm
    assert (report.action, report.started_run_id) == ("started", "jr_2")
    values = last_metrics(metrics)
    assert (values["UnexpectedRunEnd"], values["RunsStarted"], values["JobDown"]) == (1, 1, 0)


def test_a_failed_first_attempt_is_left_to_glues_own_retry(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "FAILED", ended_minutes_ago=0.5, attempt=0))
    report = check(glue, metrics, trigger=state_change("FAILED"))
    assert report.action == "waiting"
    assert "Glue retries" in report.detail
    assert last_metrics(metrics)["JobDown"] == 1


def test_a_failed_run_whose_retry_never_came_is_restarted_by_the_schedule(
    glue: Any, stub: Stubber, metrics: Any
) -> None:
    # Given a failed first attempt ten minutes ago and no retry since (the state change event is best effort)
    job_runs(stub, run("jr_1", "FAILED", ended_minutes_ago=10, attempt=0))
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, {"JobName": JOB})
    assert check(glue, metrics, trigger={"detail-type": "Scheduled Event"}).action == "started"


@pytest.mark.parametrize("state", ["TIMEOUT", "SUCCEEDED", "ERROR", "EXPIRED"])
def test_any_end_but_a_stop_is_unexpected_and_restarted(glue: Any, stub: Stubber, metrics: Any, state: str) -> None:
    job_runs(stub, run("jr_1", state, ended_minutes_ago=1, attempt=1))
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, {"JobName": JOB})
    report = check(glue, metrics, trigger=state_change(state))
    assert (report.action, report.unexpected_end) == ("started", True)


def test_a_fresh_stop_is_not_an_alarm_and_gets_time_for_the_next_run(glue: Any, stub: Stubber, metrics: Any) -> None:
    # Given a run stopped a minute ago (a deploy restarting it, or Glue's maintenance window)
    job_runs(stub, run("jr_1", "STOPPED", ended_minutes_ago=1))
    report = check(glue, metrics, trigger=state_change("STOPPED"))
    assert (report.action, report.unexpected_end) == ("waiting", False)


def test_a_stop_nobody_followed_up_is_restarted_after_the_grace(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "STOPPED", ended_minutes_ago=10))
    stub.add_response("start_job_run", {"JobRunId": "jr_2"}, {"JobName": JOB})
    assert check(glue, metrics).action == "started"


def test_it_gives_up_after_the_failure_limit_and_says_so(glue: Any, stub: Stubber, metrics: Any) -> None:
    # Given three failed runs within the six-hour window (limit 3), Glue's retries included
    job_runs(
        stub,
        run("jr_3", "FAILED", ended_minutes_ago=5, attempt=1),
        run("jr_2", "FAILED", ended_minutes_ago=6, attempt=0),
        run("jr_1", "ERROR", ended_minutes_ago=120, attempt=0),
    )

    # When the schedule checks (no start_job_run is stubbed: a start would fail the test)
    report = check(glue, metrics)

    # Then it does not restart, and the GaveUp and JobDown metrics raise their alarms
    assert report.action == "gave_up"
    assert "jr_3 broke" in report.detail
    values = last_metrics(metrics)
    assert (values["GaveUp"], values["JobDown"]) == (1, 1)


def test_failures_older_than_the_window_do_not_count(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(
        stub,
        run("jr_3", "FAILED", ended_minutes_ago=10, attempt=1),
        run("jr_2", "FAILED", ended_minutes_ago=400, attempt=0),
        run("jr_1", "FAILED", ended_minutes_ago=500, attempt=1),
    )
    stub.add_response("start_job_run", {"JobRunId": "jr_4"}, {"JobName": JOB})
    report = check(glue, metrics)
    assert (report.action, report.failures_in_window) == ("started", 1)


def test_it_waits_for_a_run_that_is_still_stopping(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "STOPPING"))
    assert check(glue, metrics).action == "waiting"


def test_a_start_that_loses_the_race_is_not_an_error(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "STOPPED", ended_minutes_ago=30))
    stub.add_client_error("start_job_run", service_error_code="ConcurrentRunsExceededException", http_status_code=400)
    assert check(glue, metrics).action == "none"


def test_outside_the_policy_an_active_run_is_stopped(glue: Any, stub: Stubber, metrics: Any, events: Any) -> None:
    # Given run mode with_generator and the generator switched off while the job runs
    settings = SupervisorSettings(job_name=JOB, policy=RunPolicy("with_generator", generator_rule_name="gen"))
    job_runs(stub, run("jr_1", "RUNNING"))
    stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": JOB, "JobRunId": "jr_1"}]},
        {"JobName": JOB, "JobRunIds": ["jr_1"]},
    )
    with Stubber(events) as events_stub:
        events_stub.add_response("describe_rule", {"Name": "gen", "State": "DISABLED"}, {"Name": "gen"})

        # When the supervisor checks
        report = check(glue, metrics, settings, events=events)

    # Then the run is stopped, and nothing counts as down
    assert (report.action, report.stopped_run_ids) == ("stopped", ["jr_1"])
    assert last_metrics(metrics) | {} == {
        "JobDesired": 0,
        "JobDown": 0,
        "RunsStarted": 0,
        "RunsStopped": 1,
        "GaveUp": 0,
        "UnexpectedRunEnd": 0,
    }


def test_an_end_while_the_job_is_not_wanted_is_not_an_alarm(glue: Any, stub: Stubber, metrics: Any) -> None:
    settings = SupervisorSettings(job_name=JOB, policy=RunPolicy("active_hours", active_hours_utc=(8, 10)))
    job_runs(stub, run("jr_1", "FAILED", ended_minutes_ago=1))
    report = check(glue, metrics, settings, trigger=state_change("FAILED"))
    assert (report.should_run, report.unexpected_end, report.action) == (False, False, "none")


def test_an_event_of_another_job_is_not_counted(glue: Any, stub: Stubber, metrics: Any) -> None:
    job_runs(stub, run("jr_1", "RUNNING"))
    assert check(glue, metrics, trigger=state_change("FAILED", job_name="other")).unexpected_end is False


@pytest.mark.parametrize(
    ("hours", "hour", "inside"),
    [
        ((8, 18), 8, True),
        ((8, 18), 17, True),
        ((8, 18), 18, False),
        ((8, 18), 3, False),
        ((22, 6), 23, True),
        ((22, 6), 5, True),
        ((22, 6), 6, False),
        ((22, 6), 12, False),
    ],
)
def test_active_hours_are_start_inclusive_end_exclusive_and_may_span_midnight(
    hours: tuple[int, int], hour: int, inside: bool
) -> None:
    assert in_active_hours(hours, NOW.replace(hour=hour)) is inside
    assert decide(RunPolicy("active_hours", active_hours_utc=hours), NOW.replace(hour=hour), None).should_run is inside


@pytest.mark.parametrize(
    ("mode", "rule", "hours", "message"),
    [
        ("sometimes", None, None, "run mode must be one of"),
        ("with_generator", None, None, "needs the generator's rule name"),
        ("active_hours", None, None, "needs two different hours"),
        ("active_hours", None, "8-8", "needs two different hours"),
        ("active_hours", None, "8 to 9", "must look like"),
    ],
)
def test_a_bad_run_policy_is_refused(mode: str, rule: str | None, hours: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunPolicy.parse(mode, rule, hours)


SUPERVISOR_ENV = {
    "JOB_NAME": JOB,
    "RUN_MODE": "active_hours",
    "ACTIVE_HOURS_UTC": "22-6",
    "GLUE_MAX_RETRIES": "1",
    "FAILURE_LIMIT": "5",
    "FAILURE_WINDOW_HOURS": "6",
    "RESTART_GRACE_MINUTES": "3",
    "METRIC_NAMESPACE": "TaxiAnomaly/StreamingSupervisor",
}


def test_the_environment_becomes_typed_settings() -> None:
    config = load_config(SUPERVISOR_ENV)
    assert config.settings.policy == RunPolicy("active_hours", active_hours_utc=(22, 6))
    assert (config.settings.failure_window, config.settings.restart_grace) == (timedelta(hours=6), timedelta(minutes=3))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("JOB_NAME", "", "JOB_NAME is required"),
        ("FAILURE_LIMIT", "0", "FAILURE_LIMIT must be at least 1"),
        ("GLUE_MAX_RETRIES", "one", "GLUE_MAX_RETRIES must be an integer"),
        ("RUN_MODE", "sometimes", "RUN_MODE, GENERATOR_RULE_NAME or ACTIVE_HOURS_UTC is invalid"),
    ],
)
def test_a_bad_environment_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({**SUPERVISOR_ENV, name: value})


def test_metrics_go_to_cloudwatch_with_the_job_as_dimension(aws_env: None) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    sink = CloudWatchMetricsSink(cloudwatch, "TaxiAnomaly/StreamingSupervisor", JOB)
    with Stubber(cloudwatch) as stubber:
        stubber.add_response(
            "put_metric_data",
            {},
            {
                "Namespace": "TaxiAnomaly/StreamingSupervisor",
                "MetricData": [
                    {
                        "MetricName": "JobDown",
                        "Dimensions": [{"Name": "JobName", "Value": JOB}],
                        "Value": 1.0,
                        "Unit": "Count",
                        "Timestamp": NOW,
                    }
                ],
            },
        )
        sink.put_metrics({"JobDown": 1}, NOW)
        stubber.assert_no_pending_responses()


def test_the_handler_supervises_with_the_module_clients(
    aws_env: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the handler module loaded from a valid environment, its clients stubbed
    for name, value in {**SUPERVISOR_ENV, "RUN_MODE": "always", "ACTIVE_HOURS_UTC": ""}.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("streaming_job_control.supervisor_handler", None)
    handler = importlib.import_module("streaming_job_control.supervisor_handler")
    with Stubber(handler.GLUE) as glue_stub, Stubber(handler.METRICS.cloudwatch) as cloudwatch_stub:
        glue_stub.add_response("get_job_runs", {"JobRuns": [run("jr_1", "RUNNING")]}, {"JobName": JOB})
        cloudwatch_stub.add_response(
            "put_metric_data", {}, {"Namespace": "TaxiAnomaly/StreamingSupervisor", "MetricData": ANY}
        )

        # When the schedule invokes it
        response = handler.lambda_handler({"detail-type": "Scheduled Event", "detail": {}}, lambda_context)

    # Then it reports the running job
    assert (response["action"], response["JobDown"]) == ("none", 0)
