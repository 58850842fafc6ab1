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
# SendPipelineExecutionStepSuccess's OutputParameter Value is at most 1024 characters (API Reference,
# OutputParameter), and the outputs append "scoring/" to the output location; S3 keys are at most
# 1024 bytes. 1000 characters leaves room for both.
MAX_LOCATION_CHARS = 1000
# arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/0a1b2c3d4e5f
EXECUTION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/(?P<pipeline>[A-Za-z0-9-]{1,256})"
    r"/execution/(?P<execution>[a-z0-9]{1,64})$"
)


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


def execution_id_of(execution_arn: str | None) -> str | None:
    """The execution id at the end of a pipeline execution ARN, or None for anything else."""
    match = EXECUTION_ARN_PATTERN.fullmatch(execution_arn or "")
    return match.group("execution") if match else None


def location_problem(value: str) -> str | None:
    """Why an s3:// URI is not in canonical form (None when it is): what S3 writes is what we report."""
    if len(value) > MAX_LOCATION_CHARS or len(value.encode("utf-8")) > MAX_LOCATION_CHARS:
        return f"is longer than {MAX_LOCATION_CHARS} characters"
    key = value[len("s3://") :].partition("/")[2]
    if "//" in key or key.startswith("/"):
        return "contains an empty path segment ('//')"
    if any(segment in (".", "..") for segment in key.split("/")):
        return "contains a '.' or '..' path segment"
    if any(ord(character) < 32 or character == "\\" for character in value):
        return "contains a control character or a backslash"
    return None


def parse_callback_message(body: str, *, pipeline_name: str | None = None) -> CallbackRequest:
    """Classify a queue message body; raises UnanswerableMessageError when there is no valid token.

    With `pipeline_name`, a start must come from an execution of that pipeline, and its output location
    must be the execution's own prefix (ending in /<execution id>/): a message cannot make the job
    write over another execution's prepared data.
    """
    try:
        message: Any = json.loads(body)
    except RecursionError as error:
        # json gives up on deeply nested input; that body can never be answered either.
        raise UnanswerableMessageError("body is JSON nested too deeply to read") from error
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
    # A stop needs only the token, so it is honoured even when the arguments are unusable. The
    # StopPipelineExecution reference calls the field "Status"; the messages seen carry "status".
    status = message.get("status", message.get("Status"))
    if isinstance(status, str) and status.lower() == STOPPING_STATUS.lower():
        return StopRequest(token=token, pipeline_execution_arn=execution_arn)

    problem = _arguments_problem(message.get("arguments")) or _binding_problem(
        message["arguments"], execution_arn, pipeline_name
    )
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
        problem = location_problem(arguments[name])
        if problem:
            return f"'arguments.{name}' {problem}: {str(arguments[name])[:100]!r}"
    if not str(arguments["output_location"]).endswith("/"):
        return f"'arguments.output_location' must end with '/', got {str(arguments['output_location'])[:100]!r}"
    return None


def _binding_problem(arguments: dict[str, Any], execution_arn: str | None, pipeline_name: str | None) -> str | None:
    """The output location must be the prefix of the execution named in pipelineExecutionArn."""
    if pipeline_name is None:
        return None
    match = EXECUTION_ARN_PATTERN.fullmatch(execution_arn or "")
    if match is None:
        return f"'pipelineExecutionArn' is not a pipeline execution ARN: {str(execution_arn)[:120]!r}"
    if match.group("pipeline").lower() != pipeline_name.lower():
        return f"'pipelineExecutionArn' belongs to pipeline {match.group('pipeline')!r}, not {pipeline_name!r}"
    suffix = f"/{match.group('execution')}/"
    if not str(arguments["output_location"]).endswith(suffix):
        return (
            f"'arguments.output_location' must end with this execution's id ({suffix}), "
            f"got {str(arguments['output_location'])[:100]!r}"
        )
    return None
