"""Parsing and validating the message SageMaker puts on the callback queue."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

# The API's CallbackToken: fixed length 10, pattern [a-zA-Z0-9]+.
CALLBACK_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9]{10}$")
# s3://bucket or s3://bucket/key...; bucket names follow the S3 naming rules, keys have no whitespace.
S3_URI_PATTERN = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?$")
STOPPING_STATUS = "Stopping"


class UnanswerableMessageError(ValueError):
    """The message has no usable callback token, so no callback can be sent for it."""


@dataclass(frozen=True)
class StartRequest:
    """Run the prep step for this callback token."""

    token: str
    input_location: str
    output_location: str
    pipeline_execution_arn: str | None


@dataclass(frozen=True)
class StopRequest:
    """SageMaker is stopping the execution: stop the work and fail the step."""

    token: str
    pipeline_execution_arn: str | None


@dataclass(frozen=True)
class InvalidRequest:
    """The token is usable but the arguments are not: fail the step with `reason`."""

    token: str
    reason: str
    pipeline_execution_arn: str | None


CallbackRequest = StartRequest | StopRequest | InvalidRequest


def is_valid_callback_token(token: object) -> TypeGuard[str]:
    return isinstance(token, str) and CALLBACK_TOKEN_PATTERN.fullmatch(token) is not None


def is_s3_uri(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and S3_URI_PATTERN.fullmatch(value) is not None


def parse_callback_message(body: str) -> CallbackRequest:
    """Classify a queue message body; raises UnanswerableMessageError when there is no valid token."""
    try:
        message: Any = json.loads(body)
    except (TypeError, ValueError) as error:
        raise UnanswerableMessageError(f"body is not JSON ({error})") from error
    if not isinstance(message, dict):
        raise UnanswerableMessageError(f"body is JSON {type(message).__name__}, not an object")
    if "token" not in message:
        raise UnanswerableMessageError("body has no 'token'")
    token = message["token"]
    if not is_valid_callback_token(token):
        raise UnanswerableMessageError("'token' is not 10 alphanumeric characters")

    execution_arn = message.get("pipelineExecutionArn")
    execution_arn = execution_arn if isinstance(execution_arn, str) and execution_arn else None
    # A stop needs only the token, so it is honoured even when the arguments are unusable.
    if message.get("status") == STOPPING_STATUS:
        return StopRequest(token=token, pipeline_execution_arn=execution_arn)

    problem = _arguments_problem(message.get("arguments"))
    if problem:
        reason = f"Invalid callback message: {problem}"
        return InvalidRequest(token=token, reason=reason, pipeline_execution_arn=execution_arn)
    arguments = message["arguments"]
    return StartRequest(
        token=token,
        input_location=arguments["input_location"],
        output_location=arguments["output_location"],
        pipeline_execution_arn=execution_arn,
    )


def _arguments_problem(arguments: object) -> str | None:
    if arguments is None:
        return "'arguments' is missing"
    if not isinstance(arguments, dict):
        return f"'arguments' must be an object, got {type(arguments).__name__}"
    if not arguments:
        return "'arguments' is empty"
    for name in ("input_location", "output_location"):
        if name not in arguments:
            return f"'arguments.{name}' is missing"
        if not is_s3_uri(arguments[name]):
            return f"'arguments.{name}' must be an s3://bucket/key URI, got {str(arguments[name])[:100]!r}"
    return None
