"""Sending the outcome to SageMaker: reasons, idempotency tokens, retries, already-used tokens."""

from __future__ import annotations

import logging
import re

import pytest
from botocore.exceptions import ClientError
from callback_support import TOKEN, LogRecords, RecordingSleep, StubbedClient

from pipeline_callback.callback import (
    CallbackOutcome,
    client_request_token,
    send_step_failure,
    send_step_success,
)
from pipeline_callback.errors import describe_error, to_failure_reason
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier

EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e"


def expect_failure(sagemaker: StubbedClient, reason: str) -> None:
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_failure",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"CallbackToken": TOKEN, "FailureReason": reason, "ClientRequestToken": client_request_token(TOKEN, "failure")},
    )


def test_output_parameters_follow_the_contract() -> None:
    # Given an output location without a trailing slash
    # When the success outputs are derived
    outputs = success_output_parameters("s3://bucket/run/42")

    # Then they point at train/ and scoring/ under it
    assert outputs == [
        {"Name": "s3_data_out", "Value": "s3://bucket/run/42/train/"},
        {"Name": "s3_scoring_data", "Value": "s3://bucket/run/42/scoring/"},
    ]


def test_output_parameters_do_not_double_the_slash() -> None:
    # Given an output location ending with a slash
    # When / Then the outputs have exactly one slash before train/
    assert success_output_parameters("s3://bucket/run/")[0]["Value"] == "s3://bucket/run/train/"


def test_success_is_sent_with_outputs_and_an_idempotency_token(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given SageMaker accepts the success callback
    outputs = success_output_parameters("s3://bucket/out/")
    sagemaker.stub.add_response(
        "send_pipeline_execution_step_success",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {
            "CallbackToken": TOKEN,
            "OutputParameters": outputs,
            "ClientRequestToken": client_request_token(TOKEN, "success"),
        },
    )

    # When success is sent
    outcome = send_step_success(sagemaker.client, TOKEN, outputs, retrier)

    # Then it was delivered
    assert outcome is CallbackOutcome.DELIVERED


def test_client_request_token_is_deterministic_and_fits_the_api() -> None:
    # Given the same callback token and outcome twice, and a different outcome
    first = client_request_token(TOKEN, "failure")
    second = client_request_token(TOKEN, "failure")
    other = client_request_token(TOKEN, "success")

    # Then retries reuse the token, outcomes differ, and it is 32..128 characters as the API requires
    assert first == second
    assert first != other
    assert 32 <= len(first) <= 128
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_failure_reason_of_10000_chars_is_sent_truncated_to_256(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given a very long failure reason
    long_reason = "x" * 10_000
    expect_failure(sagemaker, "x" * 253 + "...")

    # When it is sent
    outcome = send_step_failure(sagemaker.client, TOKEN, long_reason, retrier)

    # Then SageMaker received 256 characters ending in an ellipsis
    assert outcome is CallbackOutcome.DELIVERED


def test_non_ascii_failure_reason_is_sent_intact(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given a reason with accents, CJK and emoji
    reason = "Échec: données manquantes 日本語 🚕"
    expect_failure(sagemaker, reason)

    # When / Then it is sent unchanged
    assert send_step_failure(sagemaker.client, TOKEN, reason, retrier) is CallbackOutcome.DELIVERED


def test_long_non_ascii_reason_with_a_lone_surrogate_does_not_crash(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given 300 non-ASCII characters including a lone surrogate (invalid UTF-8) and line breaks
    reason = "é\ud800\n" + "日" * 300
    expected = to_failure_reason(reason)
    expect_failure(sagemaker, expected)

    # When it is sent
    outcome = send_step_failure(sagemaker.client, TOKEN, reason, retrier)

    # Then a valid, single-line, 256-character reason went out
    assert outcome is CallbackOutcome.DELIVERED
    assert len(expected) == 256
    assert expected.startswith("é? 日")
    expected.encode("utf-8")


def test_exception_reason_is_converted_to_readable_text(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given an AWS error as the reason
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "StartJobRun")
    expect_failure(sagemaker, "AccessDeniedException: not allowed")

    # When / Then the code and message are sent, not the object
    assert send_step_failure(sagemaker.client, TOKEN, error, retrier) is CallbackOutcome.DELIVERED


def test_describe_error_of_a_plain_exception() -> None:
    # Given / When / Then plain exceptions show their type and text
    assert describe_error(ValueError("bad value")) == "ValueError: bad value"
    assert describe_error(TimeoutError()) == "TimeoutError"


def test_throttled_callback_is_retried_then_succeeds(
    sagemaker: StubbedClient, retrier: Retrier, sleep: RecordingSleep
) -> None:
    # Given SageMaker throttles the first callback and accepts the second
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "ThrottlingException", "Rate exceeded")
    expect_failure(sagemaker, "boom")

    # When the failure is sent
    outcome = send_step_failure(sagemaker.client, TOKEN, "boom", retrier)

    # Then it was delivered after one backoff
    assert outcome is CallbackOutcome.DELIVERED
    assert sleep.calls == [1.0]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param("ConflictException", "Step is not in an executing state", id="conflict"),
        pytest.param("ResourceNotFound", "Callback token not found", id="not-found"),
    ],
)
def test_callback_for_an_already_used_token_is_harmless(
    sagemaker: StubbedClient, retrier: Retrier, logs: LogRecords, code: str, message: str
) -> None:
    # Given SageMaker says the step no longer waits for this token
    sagemaker.stub.add_client_error("send_pipeline_execution_step_success", code, message)

    # When success is sent
    outcome = send_step_success(sagemaker.client, TOKEN, success_output_parameters("s3://b/o/"), retrier)

    # Then nothing raises, and it is logged as already reported
    assert outcome is CallbackOutcome.ALREADY_REPORTED
    assert logs.contains("already used", logging.WARNING)


def test_other_callback_errors_are_real_errors(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given SageMaker denies access
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "AccessDeniedException", "no")

    # When / Then the error propagates (the caller must not treat the step as answered)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        send_step_failure(sagemaker.client, TOKEN, "boom", retrier)


def test_validation_error_about_something_else_is_a_real_error(sagemaker: StubbedClient, retrier: Retrier) -> None:
    # Given a ValidationException that is not about the token or the step's state
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "ValidationException", "1 validation error")

    # When / Then it propagates
    with pytest.raises(ClientError, match="ValidationException"):
        send_step_failure(sagemaker.client, TOKEN, "boom", retrier)


@pytest.mark.parametrize(
    "message",
    [
        "Callback token Ab3dE5gH9k is not valid",
        "Value 'Glue job run jr_1 FAILED: output already exists' at 'failureReason' failed to satisfy constraint",
        "The step is no longer in an executing state",
    ],
)
def test_a_validation_error_is_never_guessed_to_mean_already_answered(
    sagemaker: StubbedClient, retrier: Retrier, message: str
) -> None:
    # Issue 11, item 9: a ValidationException whose text says "token", "already" or "no longer" used to
    # be taken for "already answered", and the step then waited forever. Only the documented codes count.
    sagemaker.stub.add_client_error("send_pipeline_execution_step_failure", "ValidationException", message)

    with pytest.raises(ClientError, match="ValidationException"):
        send_step_failure(sagemaker.client, TOKEN, "boom", retrier)
