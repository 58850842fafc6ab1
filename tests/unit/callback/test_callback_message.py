"""Parsing the SageMaker callback message: what can be answered, and how."""

from __future__ import annotations

import json

import pytest
from callback_support import TOKEN, load_event

from pipeline_callback.message import (
    InvalidRequest,
    StartRequest,
    StopRequest,
    UnanswerableMessageError,
    parse_callback_message,
)


def sample_message(**changes: object) -> dict[str, object]:
    message = load_event("sagemaker-callback-message.json")
    message.update(changes)
    return message


def test_sample_message_is_a_start_request() -> None:
    # Given the sample message SageMaker sends
    body = json.dumps(load_event("sagemaker-callback-message.json"))

    # When it is parsed
    request = parse_callback_message(body)

    # Then it asks to start the prep step with its locations
    assert request == StartRequest(
        token=TOKEN,
        input_location="s3://raw-bucket-example/taxi/",
        output_location="s3://prepared-bucket-example/taxi/0a1b2c3d4e5f/",
        pipeline_execution_arn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/0a1b2c3d4e5f",
    )


def test_stopping_message_is_a_stop_request() -> None:
    # Given the sample stopping message
    body = json.dumps(load_event("sagemaker-callback-stopping-message.json"))

    # When it is parsed
    request = parse_callback_message(body)

    # Then it is a stop for the token
    assert isinstance(request, StopRequest)
    assert request.token == TOKEN


def test_stopping_message_is_honoured_even_without_arguments() -> None:
    # Given a stopping message without arguments
    body = json.dumps({"token": TOKEN, "status": "Stopping"})

    # When / Then it is still a stop request (stopping needs only the token)
    assert parse_callback_message(body) == StopRequest(token=TOKEN, pipeline_execution_arn=None)


def test_any_other_status_is_a_start_request() -> None:
    # Given a message with a status other than Stopping
    body = json.dumps(sample_message(status="Executing"))

    # When / Then it is a start request
    assert isinstance(parse_callback_message(body), StartRequest)


def test_unknown_extra_fields_are_accepted() -> None:
    # Given a message with fields SageMaker may add in the future
    body = json.dumps(sample_message(newField={"nested": [1, 2]}, anotherOne="x"))

    # When / Then it parses as a normal start request
    assert isinstance(parse_callback_message(body), StartRequest)


@pytest.mark.parametrize(
    ("body", "expected_reason"),
    [
        pytest.param("not json {", "body is not JSON", id="not-json"),
        pytest.param('["token", "Ab3dE5gH9k"]', "not an object", id="json-array"),
        pytest.param(json.dumps({"arguments": {}}), "no 'token'", id="no-token"),
        pytest.param(json.dumps({"token": "short"}), "10 alphanumeric", id="token-too-short"),
        pytest.param(json.dumps({"token": "Ab3dE5gH9k!"}), "10 alphanumeric", id="token-too-long"),
        pytest.param(json.dumps({"token": "Ab3dE5gH9-"}), "10 alphanumeric", id="token-not-alphanumeric"),
        pytest.param(json.dumps({"token": 1234567890}), "10 alphanumeric", id="token-not-string"),
    ],
)
def test_message_without_a_usable_token_cannot_be_answered(body: str, expected_reason: str) -> None:
    # Given a body that has no valid callback token
    # When it is parsed
    with pytest.raises(UnanswerableMessageError) as raised:
        parse_callback_message(body)

    # Then the error says why
    assert expected_reason in str(raised.value)


@pytest.mark.parametrize(
    ("arguments", "expected_problem"),
    [
        pytest.param(None, "'arguments' is missing", id="missing"),
        pytest.param({}, "'arguments' is empty", id="empty"),
        pytest.param(["s3://a/b"], "'arguments' must be an object", id="not-object"),
        pytest.param({"output_location": "s3://bucket/out/"}, "'arguments.input_location' is missing", id="no-input"),
        pytest.param(
            {"input_location": "https://bucket/in/", "output_location": "s3://bucket/out/"},
            "'arguments.input_location' must be an s3://bucket/key URI",
            id="input-not-s3",
        ),
        pytest.param(
            {"input_location": "s3://bucket/in/", "output_location": "s3://BAD_BUCKET/out/"},
            "'arguments.output_location' must be an s3://bucket/key URI",
            id="output-bad-bucket",
        ),
        pytest.param(
            {"input_location": "s3://bucket/in/", "output_location": 42},
            "'arguments.output_location' must be an s3://bucket/key URI",
            id="output-not-string",
        ),
    ],
)
def test_message_with_bad_arguments_is_answered_with_a_failure(arguments: object, expected_problem: str) -> None:
    # Given a valid token but unusable arguments
    message = sample_message()
    if arguments is None:
        del message["arguments"]
    else:
        message["arguments"] = arguments

    # When it is parsed
    request = parse_callback_message(json.dumps(message))

    # Then it is an invalid request whose readable reason names the problem
    assert isinstance(request, InvalidRequest)
    assert request.token == TOKEN
    assert expected_problem in request.reason
