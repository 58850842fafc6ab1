"""Events completion mode: answer the step when the Glue run finishes."""

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
from glue_completion.logic import ConfigError, handle_glue_state_change, load_config

from pipeline_callback.callback import client_request_token
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import TokenRecords

GLUE_JOB = "taxi-prep-dev"
RUN_ID = "jr_5f6e1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
OUTPUT = "s3://prepared-bucket-example/taxi/0a1b2c3d4e5f/"
EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e"


def state_change(state: str, message: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("glue-job-state-change.json"))
    event["detail"]["state"] = state
    if message is None:
        event["detail"].pop("message", None)
    else:
        event["detail"]["message"] = message
    return event


def expect_job_run(glue: StubbedClient, arguments: dict[str, str], error_message: str | None = None) -> None:
    job_run: dict[str, Any] = {"Id": RUN_ID, "JobName": GLUE_JOB, "Arguments": arguments}
    if error_message:
        job_run["ErrorMessage"] = error_message
    glue.stub.add_response("get_job_run", {"JobRun": job_run}, {"JobName": GLUE_JOB, "RunId": RUN_ID})


def pipeline_arguments() -> dict[str, str]:
    return {"--input_uri": "s3://raw-bucket-example/taxi/", "--output_uri": OUTPUT, "--callback_token": TOKEN}


def expect_failure(sagemaker: StubbedClient, reason: str) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_failure",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


@pytest.fixture
def completion(
    import_handler: Any,
    monkeypatch: pytest.MonkeyPatch,
    glue: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    records: TokenRecords,
    token_table: str,
) -> ModuleType:
    module: ModuleType = import_handler(
        "glue_completion.handler", {"GLUE_JOB_NAME": GLUE_JOB, **record_environment(token_table)}
    )
    monkeypatch.setattr(module, "glue_client", glue.client)
    monkeypatch.setattr(module, "sagemaker_client", sagemaker.client)
    monkeypatch.setattr(module, "records", records)
    monkeypatch.setattr(module, "retry_sleep", sleep)
    return module


def test_failed_run_fails_the_step_with_the_event_message(
    completion: ModuleType, glue: StubbedClient, sagemaker: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the sample FAILED event for a run started for a pipeline
    expect_job_run(glue, pipeline_arguments())
    reason = f"Glue job run {RUN_ID} FAILED: AnalysisException: Path does not exist: s3://raw-bucket-example/taxi/"
    expect_failure(sagemaker, reason)

    # When it is handled
    result = completion.lambda_handler(load_event("glue-job-state-change.json"), lambda_context)

    # Then the pipeline hears the state and Glue's message
    assert result["outcome"] == f"failure reported (failure delivered by glue-completion): {reason}"


def test_succeeded_run_reports_success_with_the_output_parameters(
    completion: ModuleType, glue: StubbedClient, sagemaker: StubbedClient, lambda_context: LambdaContextStub
) -> None:
    # Given the run succeeded
    expect_job_run(glue, pipeline_arguments())
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_success",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "CallbackToken": TOKEN,
            "OutputParameters": [
                {"Name": "s3_data_out", "Value": OUTPUT + "train/"},
                {"Name": "s3_scoring_data", "Value": OUTPUT + "scoring/"},
            ],
            "ClientRequestToken": client_request_token(TOKEN, "success"),
        },
    )

    # When it is handled
    result = completion.lambda_handler(state_change("SUCCEEDED", "Job run succeeded"), lambda_context)

    # Then the pipeline hears success with the same outputs as the Fargate task sends
    assert result["outcome"] == "success reported (success delivered by glue-completion)"


@pytest.mark.parametrize("state", ["TIMEOUT", "STOPPED", "ERROR"])
def test_unsuccessful_run_without_event_message_uses_the_runs_error_message(
    glue: StubbedClient, sagemaker: StubbedClient, retrier: Retrier, records: TokenRecords, state: str
) -> None:
    # Given the event has no message but the run has an ErrorMessage
    expect_job_run(glue, pipeline_arguments(), error_message="Job run exceeded the timeout")
    expect_failure(sagemaker, f"Glue job run {RUN_ID} {state}: Job run exceeded the timeout")

    # When / Then the run's error message is reported
    outcome = handle_glue_state_change(
        state_change(state), GLUE_JOB, glue=glue.client, sagemaker=sagemaker.client, records=records, retrier=retrier
    )
    assert outcome.startswith("failure reported (failure delivered by glue-completion)")


def test_event_for_another_job_is_ignored(
    glue: StubbedClient, sagemaker: StubbedClient, retrier: Retrier, records: TokenRecords, logs: LogRecords
) -> None:
    # Given a state change of some other Glue job
    event = state_change("FAILED", "boom")
    event["detail"]["jobName"] = "someone-elses-job"

    # When it is handled
    outcome = handle_glue_state_change(
        event, GLUE_JOB, glue=glue.client, sagemaker=sagemaker.client, records=records, retrier=retrier
    )

    # Then no AWS call is made and the skip is logged
    assert outcome == "ignored: other job someone-elses-job"
    assert logs.contains("Ignoring job 'someone-elses-job'")


def test_run_without_callback_token_is_ignored(
    glue: StubbedClient, sagemaker: StubbedClient, retrier: Retrier, records: TokenRecords, logs: LogRecords
) -> None:
    # Given a run someone started by hand (no --callback_token)
    expect_job_run(glue, {"--input_uri": "s3://a/b"})

    # When / Then nothing is sent to SageMaker and it is logged
    outcome = handle_glue_state_change(
        state_change("FAILED", "boom"),
        GLUE_JOB,
        glue=glue.client,
        sagemaker=sagemaker.client,
        records=records,
        retrier=retrier,
    )
    assert outcome == "ignored: run has no callback token"
    assert logs.contains("has no --callback_token argument")


def test_non_terminal_state_is_ignored(
    glue: StubbedClient, sagemaker: StubbedClient, retrier: Retrier, records: TokenRecords
) -> None:
    # Given a RUNNING state change
    # When / Then nothing is looked up or sent
    outcome = handle_glue_state_change(
        state_change("RUNNING"),
        GLUE_JOB,
        glue=glue.client,
        sagemaker=sagemaker.client,
        records=records,
        retrier=retrier,
    )
    assert outcome == "ignored: state RUNNING"


def test_already_used_token_is_harmless(
    glue: StubbedClient, sagemaker: StubbedClient, retrier: Retrier, records: TokenRecords, logs: LogRecords
) -> None:
    # Given the step was stopped on request before the run ended
    expect_job_run(glue, pipeline_arguments())
    sagemaker.stub.add_client_error(
        "send_pipeline_execution_step_failure", "ConflictException", "Step is not in Executing status"
    )

    # When the STOPPED event is handled
    outcome = handle_glue_state_change(
        state_change("STOPPED", "stopped"),
        GLUE_JOB,
        glue=glue.client,
        sagemaker=sagemaker.client,
        records=records,
        retrier=retrier,
    )

    # Then nothing raises and it is logged
    assert outcome.startswith("failure reported (failure already_reported by glue-completion)")
    assert logs.contains("already used", logging.WARNING)


def test_glue_completion_requires_the_job_name() -> None:
    # Given / When / Then a missing GLUE_JOB_NAME is named
    with pytest.raises(ConfigError, match="GLUE_JOB_NAME"):
        load_config({"GLUE_JOB_NAME": "  ", **record_environment("t")})
