"""Issue 11 ("No step left hanging, round two"): one test (or more) per numbered item.

Faults are injected below botocore (faults_below_botocore): clients are configured as in production,
talk HTTP to loopback servers (the local mode's Glue/SageMaker emulator, moto's DynamoDB), and botocore's
own validation and retries run. The token record lives in a real DynamoDB API (moto server mode).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from callback_handler.config import load_config
from callback_handler.logic import Clients, HandlerRun, handle_callback_message
from callback_reconciler.config import ReconcilerConfig
from callback_reconciler.logic import ReconcilerClients, reconcile
from callback_support import TOKEN, FakeClock, LambdaContextStub, RecordingSleep, StubbedClient, record_environment
from faults_below_botocore import FaultInjector, loopback_client

from app_config import ConfigError, DataPrepConfig
from fargate_task.runner import EXIT_NOT_REPORTED, EXIT_REPORTED, main
from local_mode.aws_emulator import CallbackSteps, GlueJob, GlueService, LocalAwsEndpoint
from pipeline_callback.callback import client_request_token, report_outcome
from pipeline_callback.faults import Fault, classify, is_transient, may_have_executed
from pipeline_callback.message import (
    InvalidRequest,
    StartRequest,
    StopRequest,
    UnanswerableMessageError,
    parse_callback_message,
)
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier, RetryPolicy
from pipeline_callback.token_records import RecordSettings, TokenRecords

GLUE_JOB = "taxi-prep-test"
EXECUTION_ID = "0a1b2c3d4e5f"
EXECUTION_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/{EXECUTION_ID}"
INPUT = "s3://raw-bucket-example/taxi/"
OUTPUT = f"s3://prepared-bucket-example/taxi/{EXECUTION_ID}/"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/taxi-prep-dev"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/taxi-prep-dev/b99d40b3ee7d4f0d9c1fd9d0bba59a6b"


def message(**changes: Any) -> str:
    body: dict[str, Any] = {
        "token": TOKEN,
        "pipelineExecutionArn": EXECUTION_ARN,
        "arguments": {"input_location": INPUT, "output_location": OUTPUT},
    }
    body.update(changes)
    return json.dumps(body)


def no_sleep_retrier(**policy: Any) -> Retrier:
    return Retrier(policy=RetryPolicy(**policy) if policy else RetryPolicy(), sleep=lambda _: None, random=lambda: 1.0)


@pytest.fixture(autouse=True)
def botocore_does_not_really_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retry backoff sleeps through botocore.endpoint's time.sleep; make it instant."""
    import botocore.endpoint

    class InstantTime:
        def __getattr__(self, name: str) -> Any:
            import time

            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            return None

    monkeypatch.setattr(botocore.endpoint, "time", InstantTime())


# -- a loopback Glue + SageMaker (the local mode's emulator) with a controllable job ------------------
@dataclass
class Loopback:
    glue_service: GlueService
    callbacks: CallbackSteps
    url: str
    release: threading.Event
    outcome: dict[str, str]

    def glue(self) -> Any:
        return loopback_client("glue", self.url)

    def sagemaker(self) -> Any:
        return loopback_client("sagemaker", self.url)

    def runs(self) -> list[dict[str, Any]]:
        return list(self.glue().get_job_runs(JobName=GLUE_JOB)["JobRuns"])


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    release = threading.Event()
    outcome = {"state": "SUCCEEDED"}

    def script(arguments: dict[str, str], run_id: str) -> None:
        # A run lasts until the test releases it (or 20 s), then succeeds or fails as told.
        release.wait(20)
        if outcome["state"] == "FAILED":
            raise RuntimeError("AnalysisException: Path does not exist")

    glue_service = GlueService()
    glue_service.register_job(GlueJob(name=GLUE_JOB, script=script))
    callbacks = CallbackSteps()
    callbacks.expect(TOKEN, EXECUTION_ARN)
    with LocalAwsEndpoint(glue_service, callbacks) as endpoint:
        yield Loopback(glue_service, callbacks, endpoint.url, release, outcome)
        release.set()
        glue_service.wait_for_runs(5)


def task_environment(token_table: str, **changes: str) -> dict[str, str]:
    environment = {
        "inputLocation": INPUT,
        "outputLocation": OUTPUT,
        "token": TOKEN,
        "glue_job_name": GLUE_JOB,
        "pipelineExecutionArn": EXECUTION_ARN,
        "FIRST_POLL_SECONDS": "0.1",
        "POLL_INTERVAL_SECONDS": "0.1",
        **record_environment(token_table),
    }
    environment.update(changes)
    return environment


def run_task(
    loopback: Loopback, dynamodb: Any, token_table: str, glue: Any = None, sagemaker: Any = None, **environment: str
) -> int:
    return main(
        task_environment(token_table, **environment),
        glue or loopback.glue(),
        sagemaker or loopback.sagemaker(),
        dynamodb,
        random_fraction=lambda: 0.01,
    )


# == Item 1: network errors are transient; a success is retried far longer =========================
@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://glue.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://glue.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://glue.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://glue.us-east-1.amazonaws.com"),
        ClientError(
            {"Error": {"Code": "ServiceUnavailableException"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetJobRun"
        ),
        ClientError({"Error": {"Code": "Weird"}, "ResponseMetadata": {"HTTPStatusCode": 502}}, "GetJobRun"),
    ],
    ids=["endpoint-connection", "connect-timeout", "read-timeout", "connection-closed", "503", "5xx-unknown-code"],
)
def test_network_and_server_errors_are_transient(error: BaseException) -> None:
    assert classify(error).fault is Fault.TRANSIENT


@pytest.mark.parametrize(
    "error",
    [
        SSLError(endpoint_url="https://glue.us-east-1.amazonaws.com", error="certificate verify failed"),
        ClientError({"Error": {"Code": "AccessDeniedException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X"),
        ClientError({"Error": {"Code": "ValidationException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X"),
        ValueError("a bug"),
    ],
    ids=["tls", "access-denied", "validation", "bug"],
)
def test_configuration_and_request_errors_are_permanent(error: BaseException) -> None:
    assert not is_transient(error)


def test_only_a_lost_answer_may_have_executed() -> None:
    assert may_have_executed(ReadTimeoutError(endpoint_url="x"))
    assert may_have_executed(ConnectionClosedError(endpoint_url="x"))
    assert not may_have_executed(EndpointConnectionError(endpoint_url="x"))
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X"
    )
    assert not may_have_executed(throttled)


def test_a_failed_status_check_during_a_run_does_not_stop_it(
    loopback: Loopback, dynamodb: Any, token_table: str
) -> None:
    # Given GetJobRun's answers are lost three times while the run is going (below botocore)
    glue = loopback.glue()
    faults = FaultInjector(glue).fail("GetJobRun", "answer-lost", times=3)
    threading.Timer(1.0, loopback.release.set).start()

    # When the task runs
    exit_code = run_task(loopback, dynamodb, token_table, glue=glue)

    # Then the healthy run was not stopped, and the step succeeded
    assert exit_code == EXIT_REPORTED
    assert faults.count("GetJobRun") >= 4
    assert loopback.runs()[0]["JobRunState"] == "SUCCEEDED"
    outcome = loopback.callbacks.wait(TOKEN, timeout=1)
    assert outcome is not None and outcome.succeeded


def test_a_success_report_survives_a_network_outage(loopback: Loopback, dynamodb: Any, token_table: str) -> None:
    # Given the first 8 attempts to send the success fail to connect (botocore retries 3 times each)
    sagemaker = loopback.sagemaker()
    faults = FaultInjector(sagemaker).fail("SendPipelineExecutionStepSuccess", "not-sent", times=8)
    loopback.release.set()

    # When the task runs
    exit_code = run_task(loopback, dynamodb, token_table, sagemaker=sagemaker)

    # Then the success got through (no failure in its place) and the task exits 0
    assert exit_code == EXIT_REPORTED
    assert faults.count("SendPipelineExecutionStepSuccess") == 9
    outcome = loopback.callbacks.wait(TOKEN, timeout=1)
    assert outcome is not None and outcome.succeeded


def test_a_success_that_cannot_be_delivered_stays_recorded_as_success(
    loopback: Loopback, dynamodb: Any, token_table: str, records: TokenRecords
) -> None:
    # Given SageMaker stays unreachable for the whole of the task's patience
    sagemaker = loopback.sagemaker()
    FaultInjector(sagemaker).fail("SendPipelineExecutionStepSuccess", "not-sent", times=10_000)
    loopback.release.set()

    # When the task runs (its retry policy shortened for the test)
    import fargate_task.runner as runner

    policy = RetryPolicy(max_attempts=3, base_delay_seconds=0.0, max_delay_seconds=0.0)
    original = runner.SUCCESS_REPORT_RETRY_POLICY
    runner.SUCCESS_REPORT_RETRY_POLICY = policy
    try:
        exit_code = run_task(loopback, dynamodb, token_table, sagemaker=sagemaker)
    finally:
        runner.SUCCESS_REPORT_RETRY_POLICY = original

    # Then the task exits 1, but the record holds the success for the watchdog/reconciler to deliver
    assert exit_code == EXIT_NOT_REPORTED
    record = TokenRecords(dynamodb, token_table).get(TOKEN)
    assert record is not None and record.outcome == "success" and not record.reported


# == Item 2: nothing waits forever in events mode: the reconciler ends steps whose event was lost ======
@pytest.fixture
def reconciler_config(token_table: str) -> ReconcilerConfig:
    return ReconcilerConfig(
        glue_job_name=GLUE_JOB,
        cluster_arn=None,
        records=RecordSettings(table_name=token_table, deadline_seconds=3600, ttl_seconds=86400, lease_seconds=120),
        alarm_after_seconds=1800,
    )


def started_glue_record(records: TokenRecords, run_id: str) -> None:
    claim = records.claim_start(
        TOKEN,
        owner="handler-1",
        lease_seconds=120,
        execution_arn=EXECUTION_ARN,
        input_location=INPUT,
        output_location=OUTPUT,
        mode="events",
    )
    assert claim.claimed
    records.record_started(TOKEN, owner="handler-1", glue_run_id=run_id)


def expect_job_run(glue: StubbedClient, run_id: str, state: str, error: str | None = None) -> None:
    run: dict[str, Any] = {"Id": run_id, "JobRunState": state, "Arguments": {"--output_uri": OUTPUT}}
    if error:
        run["ErrorMessage"] = error
    glue.stub.add_response("get_job_run", {"JobRun": run}, {"JobName": GLUE_JOB, "RunId": run_id})


def expect_callback(sagemaker: StubbedClient, outcome: str, **fields: Any) -> None:
    operation = f"send_pipeline_execution_step_{outcome}"
    sagemaker.stub.add_response(
        operation,
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "ClientRequestToken": client_request_token(TOKEN, outcome), **fields},
    )


def test_reconciler_reports_a_success_whose_completion_event_was_lost(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    # Given the Glue run SUCCEEDED but its "Glue Job State Change" event never reached the completion Lambda
    started_glue_record(records, "jr_lost")
    expect_job_run(glue, "jr_lost", "SUCCEEDED")
    expect_callback(sagemaker, "success", OutputParameters=success_output_parameters(OUTPUT))

    # When the reconciler runs
    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )

    # Then the step succeeded with the run's outputs, and the record is closed
    assert summary.actions[TOKEN].startswith("Glue run jr_lost SUCCEEDED without a callback")
    record = records.get(TOKEN)
    assert record is not None and record.reported and not record.is_open


def test_reconciler_fails_a_step_whose_run_failed_silently(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    started_glue_record(records, "jr_failed")
    expect_job_run(glue, "jr_failed", "FAILED", "AnalysisException: Path does not exist")
    expect_callback(
        sagemaker, "failure", FailureReason="Glue job run jr_failed FAILED: AnalysisException: Path does not exist"
    )

    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )
    assert summary.actions[TOKEN].startswith("failed the step")


def test_reconciler_stops_a_run_past_the_deadline_and_says_so(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    # Given a run still RUNNING long after the step's deadline (records are written with a 3 h deadline)
    started_glue_record(records, "jr_stuck")
    clock.advance(3 * 3600 + 60)
    expect_job_run(glue, "jr_stuck", "RUNNING")
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": "jr_stuck"}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": ["jr_stuck"]},
    )
    reason = "No outcome 181 minutes after the callback message (deadline passed): Glue job run jr_stuck was RUNNING"
    expect_callback(sagemaker, "failure", FailureReason=reason)

    # When the reconciler runs
    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )

    # Then the run is stopped and the step fails saying why; the step counted as overdue (the alarm's metric)
    assert summary.actions[TOKEN].endswith(reason)
    assert summary.overdue == 1


def test_reconciler_leaves_a_step_whose_work_still_runs_in_time(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    started_glue_record(records, "jr_busy")
    expect_job_run(glue, "jr_busy", "RUNNING")
    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )
    assert summary.actions[TOKEN] == "waiting (RUNNING)"
    assert summary.overdue == 0


def test_reconciler_stops_the_run_of_a_step_that_already_ended(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    # Given the step was answered (a failure) but its Glue run still runs
    started_glue_record(records, "jr_orphan")
    records.decide(TOKEN, outcome="failure", reason="stopped on request", decided_by="stop request")
    records.mark_reported(TOKEN, note="failure delivered", work_ended=False)
    expect_job_run(glue, "jr_orphan", "RUNNING")
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": "jr_orphan"}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": ["jr_orphan"]},
    )

    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )
    assert summary.actions[TOKEN].startswith("stopped Glue run jr_orphan")


def test_reconciler_reports_a_killed_task_that_its_watchdog_missed(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    ecs: StubbedClient,
    token_table: str,
    clock: FakeClock,
) -> None:
    # Given (poll mode) the task died and the watchdog's event was lost; its Glue run still runs
    config = ReconcilerConfig(
        glue_job_name=GLUE_JOB,
        cluster_arn=CLUSTER_ARN,
        records=RecordSettings(table_name=token_table, deadline_seconds=3600, ttl_seconds=86400, lease_seconds=120),
        alarm_after_seconds=1800,
    )
    records.claim_start(
        TOKEN,
        owner="h",
        lease_seconds=120,
        execution_arn=EXECUTION_ARN,
        input_location=INPUT,
        output_location=OUTPUT,
        mode="poll",
    )
    records.record_started(TOKEN, owner="h", task_arn=TASK_ARN)
    records.record_glue_run(TOKEN, "jr_task")
    expect_job_run(glue, "jr_task", "RUNNING")
    ecs.stub.add_response(
        "describe_tasks",
        {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "STOPPED", "stoppedReason": "OutOfMemoryError"}]},
        {"cluster": CLUSTER_ARN, "tasks": [TASK_ARN]},
    )
    glue.stub.add_response(
        "batch_stop_job_run",
        {"SuccessfulSubmissions": [{"JobName": GLUE_JOB, "JobRunId": "jr_task"}], "Errors": []},
        {"JobName": GLUE_JOB, "JobRunIds": ["jr_task"]},
    )
    reason = (
        "Prep task stopped before reporting: OutOfMemoryError (found by the reconciler); "
        "Glue job run jr_task was asked to stop"
    )
    expect_callback(sagemaker, "failure", FailureReason=reason)

    summary = reconcile(
        config, ReconcilerClients(sagemaker.client, glue.client, records, ecs.client), no_sleep_retrier(), clock=clock
    )
    assert summary.actions[TOKEN].endswith(reason)


def test_reconciler_delivers_an_outcome_that_was_decided_but_never_delivered(
    records: TokenRecords,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    reconciler_config: ReconcilerConfig,
    clock: FakeClock,
) -> None:
    started_glue_record(records, "jr_done")
    records.decide(TOKEN, outcome="success", outputs=success_output_parameters(OUTPUT), decided_by="glue-completion")
    expect_job_run(glue, "jr_done", "SUCCEEDED")
    expect_callback(sagemaker, "success", OutputParameters=success_output_parameters(OUTPUT))

    summary = reconcile(
        reconciler_config, ReconcilerClients(sagemaker.client, glue.client, records), no_sleep_retrier(), clock=clock
    )
    assert summary.actions[TOKEN] == "delivered the recorded outcome: success delivered by reconciler"


# == Item 3: one message, one Glue run ==============================================================
def handler_config(mode: str, token_table: str) -> Any:
    environment = {
        "COMPLETION_MODE": mode,
        "GLUE_JOB_NAME": GLUE_JOB,
        "PIPELINE_NAME": "taxi-anomaly-dev",
        **record_environment(token_table),
    }
    if mode == "poll":
        environment |= {
            "CLUSTER_ARN": CLUSTER_ARN,
            "TASK_DEFINITION_ARN": "arn:aws:ecs:us-east-1:123456789012:task-definition/t:1",
            "CONTAINER_NAME": "FargateTask",
            "SUBNET_IDS": "subnet-1",
            "SECURITY_GROUP_IDS": "sg-1",
            "ASSIGN_PUBLIC_IP": "DISABLED",
        }
    return load_config(environment)


def test_two_concurrent_deliveries_start_one_glue_run(
    loopback: Loopback, dynamodb_endpoint: str, token_table: str
) -> None:
    # Given two handler invocations receive the same message at once (events mode), and StartJobRun is
    # slow enough that both would be inside it together if both were let through
    config = handler_config("events", token_table)
    barrier = threading.Barrier(2)

    def both_inside_start_job_run() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1.0)

    outcomes: list[str] = []

    def deliver() -> None:
        glue = loopback.glue()
        FaultInjector(glue).before["StartJobRun"] = both_inside_start_job_run
        records = TokenRecords(loopback_client("dynamodb", dynamodb_endpoint), token_table)
        clients = Clients(ecs=None, glue=glue, sagemaker=loopback.sagemaker(), records=records)  # type: ignore[arg-type]
        try:
            outcomes.append(handle_callback_message(message(), HandlerRun(config, clients, no_sleep_retrier())))
        except Exception as error:  # the loser may be told to come back later
            outcomes.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Then exactly one run exists for the token
    assert len(loopback.runs()) == 1, outcomes
    assert sum(outcome.startswith("Glue job run started") for outcome in outcomes) == 1, outcomes


def test_a_lost_start_job_run_answer_does_not_start_a_second_run(
    loopback: Loopback, dynamodb: Any, token_table: str
) -> None:
    # Given StartJobRun reaches Glue (a run starts) but its answer is lost (ReadTimeoutError), twice
    glue = loopback.glue()
    faults = FaultInjector(glue).fail("StartJobRun", "answer-lost", times=1)
    loopback.release.set()

    # When the prep task starts the run
    exit_code = run_task(loopback, dynamodb, token_table, glue=glue)

    # Then the existing run was adopted, not doubled, and the step succeeded
    assert exit_code == EXIT_REPORTED
    assert faults.count("StartJobRun") == 1  # botocore did not resend it either
    assert len(loopback.runs()) == 1


# == Item 4: a stop handled before the start prevents the start ====================================
def test_stop_before_start_prevents_the_start(
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    records: TokenRecords,
    token_table: str,
) -> None:
    config = handler_config("poll", token_table)
    run = HandlerRun(config, Clients(ecs.client, glue.client, sagemaker.client, records), no_sleep_retrier())
    # Given the Stopping message is handled first (the start message is in a visibility back-off)
    ecs.stub.add_response("list_tasks", {"taskArns": []}, {"cluster": CLUSTER_ARN, "startedBy": TOKEN})
    glue.stub.add_response("get_job_runs", {"JobRuns": []}, {"JobName": GLUE_JOB, "MaxResults": 200})
    expect_callback(sagemaker, "failure", FailureReason="stopped on request")
    handle_callback_message(message(status="Stopping"), run)

    # When the start message arrives afterwards
    outcome = handle_callback_message(message(), run)

    # Then nothing starts (no RunTask stubbed), and the step is not answered twice
    assert outcome.startswith("not started: the execution was stopped before the work started")
    record = records.get(TOKEN)
    assert record is not None and record.outcome == "failure" and not record.started


def test_stop_while_the_start_is_in_flight_stops_what_was_started(
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    records: TokenRecords,
    token_table: str,
) -> None:
    config = handler_config("poll", token_table)
    run = HandlerRun(config, Clients(ecs.client, glue.client, sagemaker.client, records), no_sleep_retrier())

    # Given the stop is recorded while RunTask is in flight (simulated: RunTask's answer records the stop)
    def run_task_then_stop(**kwargs: Any) -> Any:
        records.record_stop(TOKEN, execution_arn=EXECUTION_ARN)
        return {"tasks": [{"taskArn": TASK_ARN}], "failures": []}

    ecs.client.run_task = run_task_then_stop  # type: ignore[method-assign]
    ecs.stub.add_response(
        "stop_task",
        {"task": {"taskArn": TASK_ARN}},
        {"cluster": CLUSTER_ARN, "task": TASK_ARN, "reason": "stopped on request"},
    )
    glue.stub.add_response("get_job_runs", {"JobRuns": []}, {"JobName": GLUE_JOB, "MaxResults": 200})
    expect_callback(sagemaker, "failure", FailureReason="stopped on request")

    # When the start finishes
    outcome = handle_callback_message(message(), run)

    # Then the task it launched is stopped again and the step fails "stopped on request"
    assert "started and stopped again" in outcome


# == Item 6: a batch cannot outlive the function; maxReceiveCount >= 5 ============================
def test_records_are_not_begun_without_time_to_finish_them(
    import_handler: Any, monkeypatch: pytest.MonkeyPatch, token_table: str, dynamodb: Any
) -> None:
    from callback_support import sqs_event

    module = import_handler(
        "callback_handler.handler",
        {
            "COMPLETION_MODE": "events",
            "GLUE_JOB_NAME": GLUE_JOB,
            "PIPELINE_NAME": "taxi-anomaly-dev",
            **record_environment(token_table),
        },
    )
    monkeypatch.setattr(module, "dynamodb_client", dynamodb)

    @dataclass(frozen=True)
    class AlmostOutOfTime(LambdaContextStub):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000

    # Given an invocation with 5 s left and a batch of two messages
    event = sqs_event(message(), message(token="Zz9yX8wV7u"))

    # When it is handled
    result = module.lambda_handler(event, AlmostOutOfTime())

    # Then neither record was begun (no AWS call: no client is stubbed for them); both come back later
    assert len(result["batchItemFailures"]) == 2


def test_retries_stop_before_the_invocation_runs_out() -> None:
    slept = RecordingSleep()
    retrier = Retrier(
        policy=RetryPolicy(max_attempts=10, base_delay_seconds=4, max_delay_seconds=4, max_total_delay_seconds=100),
        sleep=slept,
        random=lambda: 1.0,
        time_left=lambda: 12.0 - sum(slept.calls),
        reserve_seconds=5.0,
    )
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "RunTask")

    def always_throttled() -> None:
        raise throttled

    with pytest.raises(ClientError):
        retrier.call(always_throttled, description="RunTask")
    assert sum(slept.calls) <= 12.0 - 5.0


def test_configuration_keeps_batches_inside_the_timeout_and_redrive_at_five_or_more() -> None:
    with pytest.raises(ConfigError, match="handler_batch_size"):
        DataPrepConfig(handler_batch_size=5, handler_timeout_seconds=60).validate()
    with pytest.raises(ConfigError, match="at least 5"):
        DataPrepConfig(dlq_max_receive_count=3).validate()
    DataPrepConfig(handler_batch_size=3, handler_timeout_seconds=60).validate()


# == Item 8: EXPIRED is terminal, and no run is watched forever =====================================
def test_expired_run_fails_the_step_instead_of_being_polled_forever(
    glue: StubbedClient, sagemaker: StubbedClient, dynamodb: Any, token_table: str
) -> None:
    glue.stub.add_response("start_job_run", {"JobRunId": "jr_x"})
    glue.stub.add_response("get_job_run", {"JobRun": {"Id": "jr_x", "JobRunState": "EXPIRED"}})
    expect_callback(sagemaker, "failure", FailureReason="Glue job run jr_x EXPIRED: no error message")

    exit_code = main(task_environment(token_table), glue.client, sagemaker.client, dynamodb, sleep=lambda _: None)
    assert exit_code == EXIT_REPORTED


def test_a_run_that_never_ends_is_stopped_at_the_deadline(
    glue: StubbedClient, sagemaker: StubbedClient, dynamodb: Any, token_table: str
) -> None:
    # Given a run that stays RUNNING, and a task deadline of 2 s (MAX_WAIT_SECONDS)
    glue.stub.add_response("start_job_run", {"JobRunId": "jr_y"})
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for _ in range(4):  # polls at 0.5, 1.0, 1.5 and 2.0 s; at 2.5 s the deadline has passed
        glue.stub.add_response("get_job_run", {"JobRun": {"Id": "jr_y", "JobRunState": "RUNNING"}})
    glue.stub.add_response("batch_stop_job_run", {"SuccessfulSubmissions": [{"JobRunId": "jr_y"}], "Errors": []})
    expect_callback(
        sagemaker, "failure", FailureReason="Glue job run jr_y was still RUNNING after 2s; the run was asked to stop"
    )

    exit_code = main(
        task_environment(token_table, MAX_WAIT_SECONDS="2", FIRST_POLL_SECONDS="0.5", POLL_INTERVAL_SECONDS="0.5"),
        glue.client,
        sagemaker.client,
        dynamodb,
        sleep=sleep,
        clock=clock,
    )
    assert exit_code == EXIT_REPORTED


# == Item 9: "already answered" is known from the record, not guessed ==============================
def test_a_second_reporter_is_stopped_by_the_record_not_by_sagemakers_error_text(
    sagemaker: StubbedClient, records: TokenRecords
) -> None:
    # Given the task reported success
    expect_callback(sagemaker, "success", OutputParameters=success_output_parameters(OUTPUT))
    report_outcome(
        records,
        sagemaker.client,
        TOKEN,
        outcome="success",
        outputs=success_output_parameters(OUTPUT),
        decided_by="prep-task",
        retrier=no_sleep_retrier(),
        work_ended=True,
    )

    # When the watchdog later tries to fail the same step
    second = report_outcome(
        records,
        sagemaker.client,
        TOKEN,
        outcome="failure",
        reason="task stopped",
        decided_by="task-watchdog",
        retrier=no_sleep_retrier(),
        work_ended=True,
    )

    # Then SageMaker is not called at all (the stub has no second response) and the success stands
    assert (second.outcome, second.sent) == ("success", False)


# == Item 10: RunTask idempotency edges ============================================================
def test_run_task_conflict_after_a_redeploy_adopts_the_running_task(
    ecs: StubbedClient,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    records: TokenRecords,
    token_table: str,
) -> None:
    # Given the clientToken was used by a task of the previous task definition (ECS: ConflictException)
    ecs.stub.add_client_error(
        "run_task",
        "ConflictException",
        "The provided clientToken is already in use with a different RunTask request.",
        modeled_fields={"resourceIds": [TASK_ARN]},
    )
    config = handler_config("poll", token_table)
    run = HandlerRun(config, Clients(ecs.client, glue.client, sagemaker.client, records), no_sleep_retrier())

    # When the redelivered message is handled
    outcome = handle_callback_message(message(), run)

    # Then the running task is adopted, not reported as a start failure (no failure callback is stubbed)
    assert outcome == f"prep task started: {TASK_ARN}"
    record = records.get(TOKEN)
    assert record is not None and record.task_arn == TASK_ARN


# == Item 11: output locations are canonical, short enough, and bound to the execution ==============
@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (f"s3://prepared-bucket-example/taxi//{EXECUTION_ID}/", "empty path segment"),
        (f"s3://prepared-bucket-example/taxi/./{EXECUTION_ID}/", "'.' or '..'"),
        (f"s3://prepared-bucket-example/taxi/../other/{EXECUTION_ID}/", "'.' or '..'"),
        ("s3://prepared-bucket-example/" + "k" * 1000 + f"/{EXECUTION_ID}/", "longer than 1000"),
        ("s3://prepared-bucket-example/taxi/zzzzzzzzzzzz/", "this execution's id"),
        (f"s3://prepared-bucket-example/taxi/{EXECUTION_ID}", "must end with '/'"),
    ],
    ids=["double-slash", "dot", "dot-dot", "oversized", "other-execution", "no-trailing-slash"],
)
def test_unsafe_output_locations_fail_the_step_with_a_clear_reason(output: str, problem: str) -> None:
    request = parse_callback_message(
        message(arguments={"input_location": INPUT, "output_location": output}), pipeline_name="taxi-anomaly-dev"
    )
    assert isinstance(request, InvalidRequest)
    assert problem in request.reason
    assert "arguments.output_location" in request.reason


def test_a_message_from_another_pipeline_is_refused() -> None:
    other = EXECUTION_ARN.replace("taxi-anomaly-dev", "someone-else")
    request = parse_callback_message(message(pipelineExecutionArn=other), pipeline_name="taxi-anomaly-dev")
    assert isinstance(request, InvalidRequest) and "someone-else" in request.reason


def test_the_executions_own_output_location_is_accepted() -> None:
    request = parse_callback_message(message(), pipeline_name="taxi-anomaly-dev")
    assert isinstance(request, StartRequest) and request.output_location == OUTPUT
    assert all(len(p["Value"]) <= 1024 for p in success_output_parameters("s3://b/" + "k" * 990 + "/"))


# == Items 15 and 16: deep JSON is unanswerable; "Status" is honoured ================================
def test_deeply_nested_json_is_unanswerable_not_retried() -> None:
    with pytest.raises(UnanswerableMessageError, match="nested too deeply"):
        parse_callback_message("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("field", ["status", "Status"])
def test_stopping_status_is_read_from_either_spelling(field: str) -> None:
    body = json.loads(message())
    body[field] = "Stopping"
    assert isinstance(parse_callback_message(json.dumps(body)), StopRequest)


def test_concurrent_claims_on_one_token_grant_exactly_one(dynamodb_endpoint: str, token_table: str) -> None:
    # The loopback DynamoDB must be as strict as DynamoDB: conditional writes are atomic per item.
    winners: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(owner: str) -> None:
        records = TokenRecords(loopback_client("dynamodb", dynamodb_endpoint), token_table)
        barrier.wait(timeout=10)
        result = records.claim_start(
            TOKEN,
            owner=owner,
            lease_seconds=120,
            execution_arn=EXECUTION_ARN,
            input_location=INPUT,
            output_location=OUTPUT,
            mode="events",
        )
        winners.append(result.claimed)

    threads = [threading.Thread(target=claim, args=(f"owner-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(winners) == [False] * 7 + [True]
