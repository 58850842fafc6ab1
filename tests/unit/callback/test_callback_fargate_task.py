"""The Fargate prep task: start the Glue run, watch it, answer the step, handle SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import pytest
from callback_support import TOKEN, LogRecords, RecordingSleep, StubbedClient, record_environment

from fargate_task.runner import EXIT_BAD_CONFIG, EXIT_NOT_REPORTED, EXIT_REPORTED, main
from pipeline_callback.callback import client_request_token

GLUE_JOB = "taxi-prep-dev"
RUN_ID = "jr_0123456789abcdef"
INPUT = "s3://raw-bucket-example/taxi/"
OUTPUT = "s3://prepared-bucket-example/taxi/0a1b2c3d4e5f"
EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e"
TASK_ENV = {
    "inputLocation": INPUT,
    "outputLocation": OUTPUT,
    "token": TOKEN,
    "glue_job_name": GLUE_JOB,
    "pipelineExecutionArn": EXECUTION_ARN,
    "FIRST_POLL_SECONDS": "5",
    "POLL_INTERVAL_SECONDS": "15",
}


_DYNAMODB: list[Any] = []


@pytest.fixture(autouse=True)
def token_table_for_the_task(dynamodb: Any, token_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task run below records in a fresh token table (the container gets its name from the task definition)."""
    for name, value in record_environment(token_table).items():
        monkeypatch.setitem(TASK_ENV, name, value)
    _DYNAMODB[:] = [dynamodb]


class FakeClock:
    """Each reading is a quarter second after the previous one, so measured latencies are predictable."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def expect_start(glue: StubbedClient) -> None:
    glue.stub.add_response(
        "start_job_run",
        {"JobRunId": RUN_ID},
        {
            "JobName": GLUE_JOB,
            "Arguments": {
                "--input_uri": INPUT,
                "--output_uri": OUTPUT,
                "--callback_token": TOKEN,
                "--pipeline_execution_arn": EXECUTION_ARN,
            },
        },
    )


def expect_state(glue: StubbedClient, state: str, error_message: str | None = None) -> None:
    job_run: dict[str, Any] = {"Id": RUN_ID, "JobName": GLUE_JOB, "JobRunState": state}
    if error_message is not None:
        job_run["ErrorMessage"] = error_message
    glue.stub.add_response("get_job_run", {"JobRun": job_run}, {"JobName": GLUE_JOB, "RunId": RUN_ID})


def expect_success(sagemaker: StubbedClient) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_success",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "CallbackToken": TOKEN,
            "OutputParameters": [
                {"Name": "s3_data_out", "Value": OUTPUT + "/train/"},
                {"Name": "s3_scoring_data", "Value": OUTPUT + "/scoring/"},
            ],
            "ClientRequestToken": client_request_token(TOKEN, "success"),
        },
    )


def expect_failure(sagemaker: StubbedClient, reason: str) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_failure",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


def run_task(glue: StubbedClient, sagemaker: StubbedClient, sleep: Any, environ: dict[str, str] | None = None) -> int:
    return main(
        TASK_ENV if environ is None else environ,
        glue.client,
        sagemaker.client,
        _DYNAMODB[0],
        sleep=sleep,
        clock=FakeClock(),
        random_fraction=lambda: 1.0,
    )


def test_succeeded_run_reports_success_with_the_output_parameters(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, logs: LogRecords
) -> None:
    # Given the run goes RUNNING, RUNNING, RUNNING, SUCCEEDED
    expect_start(glue)
    for state in ("RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"):
        expect_state(glue, state)
    expect_success(sagemaker)

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then the pipeline heard success with train/ and scoring/ outputs, and the task exits 0
    assert exit_code == EXIT_REPORTED
    # First check after 5 s, then backing off 10 s, then capped at 15 s (slept in 1 s slices)
    assert sum(sleep.calls) == 5 + 10 + 15 + 15
    assert max(sleep.calls) <= 1.0
    assert logs.contains(f"Glue job run {RUN_ID} is RUNNING")
    assert logs.contains(f"callback_latency_seconds=0.250 run_id={RUN_ID} state=SUCCEEDED callback=success sent")


@pytest.mark.parametrize("state", ["FAILED", "TIMEOUT", "STOPPED", "ERROR"])
def test_unsuccessful_run_reports_failure_with_glues_message(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, state: str
) -> None:
    # Given the run ends in an unsuccessful state with an error message
    expect_start(glue)
    expect_state(glue, state, "AnalysisException: Path does not exist")
    expect_failure(sagemaker, f"Glue job run {RUN_ID} {state}: AnalysisException: Path does not exist")

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then the pipeline heard the state and Glue's message
    assert exit_code == EXIT_REPORTED


def test_very_long_glue_error_is_sent_truncated(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given Glue's error message is 10,000 characters
    expect_start(glue)
    expect_state(glue, "FAILED", "e" * 10_000)
    prefix = f"Glue job run {RUN_ID} FAILED: "
    expect_failure(sagemaker, (prefix + "e" * 10_000)[:253] + "...")

    # When / Then the failure goes out at 256 characters
    assert run_task(glue, sagemaker, sleep) == EXIT_REPORTED


def test_glue_start_throttled_then_succeeds(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given StartJobRun is throttled twice
    glue.stub.add_client_error("start_job_run", "ThrottlingException", "Rate exceeded")
    glue.stub.add_client_error("start_job_run", "ConcurrentRunsExceededException", "Concurrent runs exceeded")
    expect_start(glue)
    expect_state(glue, "SUCCEEDED")
    expect_success(sagemaker)

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then it backed off (2 s, then 4 s with full jitter at its maximum) and reported success
    assert exit_code == EXIT_REPORTED
    assert sleep.calls[:2] == [2.0, 4.0]


def test_glue_start_gives_up_and_fails_the_step(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given StartJobRun is throttled on every attempt
    for _ in range(6):
        glue.stub.add_client_error("start_job_run", "ThrottlingException", "Rate exceeded")
    expect_failure(sagemaker, f"Could not start Glue job {GLUE_JOB}: ThrottlingException: Rate exceeded")

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then after 6 attempts the pipeline heard the throttling error
    assert exit_code == EXIT_REPORTED
    assert len(sleep.calls) == 5


def test_glue_start_permanent_error_fails_the_step_at_once(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given the job does not exist
    glue.stub.add_client_error("start_job_run", "EntityNotFoundException", "Job taxi-prep-dev not found")
    expect_failure(
        sagemaker, f"Could not start Glue job {GLUE_JOB}: EntityNotFoundException: Job taxi-prep-dev not found"
    )

    # When / Then the step fails without retrying
    assert run_task(glue, sagemaker, sleep) == EXIT_REPORTED
    assert sleep.calls == []


def test_losing_track_of_the_run_stops_it_and_fails_the_step(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given GetJobRun is denied after the run started
    expect_start(glue)
    glue.stub.add_client_error("get_job_run", "AccessDeniedException", "not authorized")
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": RUN_ID}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": [RUN_ID]},
    )
    expect_failure(sagemaker, f"Lost track of Glue job run {RUN_ID}: AccessDeniedException: not authorized")

    # When / Then the run is stopped and the pipeline hears why
    assert run_task(glue, sagemaker, sleep) == EXIT_REPORTED


def test_sigterm_mid_run_stops_the_glue_run_and_fails_the_step(
    glue: StubbedClient, sagemaker: StubbedClient, logs: LogRecords
) -> None:
    # Given the run is RUNNING and ECS sends SIGTERM during the second wait
    expect_start(glue)
    expect_state(glue, "RUNNING")
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": RUN_ID}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": [RUN_ID]},
    )
    expect_failure(
        sagemaker, f"prep task stopped (SIGTERM) while Glue job run {RUN_ID} was RUNNING; the run was asked to stop"
    )
    sleeps: list[float] = []

    def sleep_then_sigterm(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 7:  # 5 one-second slices before the first check, then inside the next wait
            os.kill(os.getpid(), signal.SIGTERM)

    previous_handler = signal.getsignal(signal.SIGTERM)

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep_then_sigterm)

    # Then the Glue run was stopped, the pipeline heard why, the task exits 0, and the handler is restored
    assert exit_code == EXIT_REPORTED
    assert len(sleeps) == 7
    assert logs.contains("SIGTERM received", logging.WARNING)
    assert signal.getsignal(signal.SIGTERM) == previous_handler


def test_stop_requested_before_start_fails_without_starting(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep
) -> None:
    # Given the stop flag is already set
    stop_requested = threading.Event()
    stop_requested.set()
    expect_failure(sagemaker, "prep task stopped (SIGTERM) before starting the Glue job run")

    # When the task runs
    exit_code = main(
        TASK_ENV, glue.client, sagemaker.client, _DYNAMODB[0], sleep=sleep, stop_requested=stop_requested
    )

    # Then no Glue run was started (the stub would fail) and the step failed
    assert exit_code == EXIT_REPORTED


def test_callback_throttled_then_succeeds(glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep) -> None:
    # Given SageMaker throttles the success callback once
    expect_start(glue)
    expect_state(glue, "SUCCEEDED")
    sagemaker.stub.add_client_error("send_pipeline_execution_step_success", "ThrottlingException", "Rate exceeded")
    expect_success(sagemaker)

    # When / Then success is delivered on the second try
    assert run_task(glue, sagemaker, sleep) == EXIT_REPORTED
    assert sleep.calls[-1] == 2.0


def test_callback_for_an_already_used_token_exits_0(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, logs: LogRecords
) -> None:
    # Given the step was already answered (e.g. stopped on request)
    expect_start(glue)
    expect_state(glue, "SUCCEEDED")
    sagemaker.stub.add_client_error(
        "send_pipeline_execution_step_success", "ConflictException", "Step is not in Executing status"
    )

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then it is harmless: logged, exit 0
    assert exit_code == EXIT_REPORTED
    assert logs.contains("already used", logging.WARNING)
    assert logs.contains("callback=token already used")


def test_exits_non_zero_when_the_outcome_cannot_be_reported(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, logs: LogRecords
) -> None:
    # Given SageMaker rejects the callback for a real reason
    expect_start(glue)
    expect_state(glue, "FAILED", "boom")
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "AccessDeniedException", "denied")

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep)

    # Then it exits 1 (the watchdog will report) and logs the problem
    assert exit_code == EXIT_NOT_REPORTED
    assert logs.contains("Could not report failure", logging.ERROR)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("token", "", id="token-missing"),
        pytest.param("token", "not-a-token!", id="token-invalid"),
    ],
)
def test_invalid_token_exits_non_zero_without_calling_aws(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, logs: LogRecords, name: str, value: str
) -> None:
    # Given the token is missing or malformed
    environ = {**TASK_ENV, name: value}

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep, environ)

    # Then it cannot report, says so, and exits 2
    assert exit_code == EXIT_BAD_CONFIG
    assert logs.contains("token must be 10 alphanumeric characters", logging.ERROR)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        pytest.param(
            "inputLocation",
            "",
            "Prep task misconfigured: environment variable inputLocation is required",
            id="no-input",
        ),
        pytest.param(
            "outputLocation",
            "/tmp/out",
            "Prep task misconfigured: environment variable outputLocation must be an s3://bucket/key URI",
            id="output-not-s3",
        ),
        pytest.param(
            "glue_job_name", " ", "Prep task misconfigured: environment variable glue_job_name is required", id="no-job"
        ),
        pytest.param(
            "POLL_INTERVAL_SECONDS",
            "soon",
            "Prep task misconfigured: environment variable POLL_INTERVAL_SECONDS must be a number",
            id="poll-not-number",
        ),
        pytest.param(
            "FIRST_POLL_SECONDS",
            "-1",
            "Prep task misconfigured: environment variable FIRST_POLL_SECONDS must be between",
            id="first-poll-negative",
        ),
    ],
)
def test_invalid_environment_fails_the_step_and_exits_non_zero(
    glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, name: str, value: str, reason: str
) -> None:
    # Given a valid token but one bad variable
    environ = {**TASK_ENV, name: value}
    sent: list[str] = []
    sagemaker.client.meta.events.register(
        "provide-client-params.sagemaker.SendPipelineExecutionStepFailure",
        lambda params, **_: sent.append(params["FailureReason"]),
    )
    sagemaker.stub.add_response("send_pipeline_execution_step_failure", {"PipelineExecutionArn": EXECUTION_ARN})

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep, environ)

    # Then the pipeline heard which variable is wrong, and the task exits 2
    assert exit_code == EXIT_BAD_CONFIG
    assert len(sent) == 1
    assert sent[0].startswith(reason)


def test_defaults_for_poll_timing(glue: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep) -> None:
    # Given no timing variables
    environ = {k: v for k, v in TASK_ENV.items() if k not in ("FIRST_POLL_SECONDS", "POLL_INTERVAL_SECONDS")}
    expect_start(glue)
    expect_state(glue, "RUNNING")
    expect_state(glue, "SUCCEEDED")
    expect_success(sagemaker)

    # When the task runs
    exit_code = run_task(glue, sagemaker, sleep, environ)

    # Then the first check came after 5 s and the next after 10 s
    assert exit_code == EXIT_REPORTED
    assert sum(sleep.calls) == 5 + 10
