"""Sending the callback step's outcome to SageMaker, idempotently and at most once per outcome."""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pipeline_callback.errors import describe_error, error_code, to_failure_reason
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

SUCCESS = "success"
FAILURE = "failure"

# SageMaker answers a callback for a step that is no longer waiting (already reported,
# execution stopped/finished) or a token it does not know with one of these.
_TOKEN_NO_LONGER_VALID_CODES = frozenset({"ConflictException", "ResourceNotFound"})
# ...or with a ValidationException about the token or the step's state. FailureReason and
# OutputParameters are always valid here, so such a message cannot be about them.
_TOKEN_NO_LONGER_VALID_HINTS = ("token", "already", "not in", "no longer")


class CallbackOutcome(enum.Enum):
    DELIVERED = "delivered"
    ALREADY_REPORTED = "already_reported"


def client_request_token(callback_token: str, outcome: str) -> str:
    """Deterministic idempotency token: a retried callback with the same outcome is the same request.

    The API wants 32..128 characters; a SHA-256 hex digest is 64.
    """
    return hashlib.sha256(f"sagemaker-callback:{callback_token}:{outcome}".encode()).hexdigest()


def is_token_no_longer_valid(error: BaseException) -> bool:
    """True when SageMaker rejected a callback because the step has already been answered or ended."""
    code = error_code(error)
    if code in _TOKEN_NO_LONGER_VALID_CODES:
        return True
    if code == "ValidationException" and isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", "")).lower()
        return any(hint in message for hint in _TOKEN_NO_LONGER_VALID_HINTS)
    return False


def send_step_success(
    sagemaker: SageMakerClient,
    callback_token: str,
    output_parameters: list[dict[str, str]],
    retrier: Retrier,
) -> CallbackOutcome:
    """Report success; transient errors are retried, other errors raise."""
    request_token = client_request_token(callback_token, SUCCESS)

    def send() -> object:
        return sagemaker.send_pipeline_execution_step_success(
            CallbackToken=callback_token,
            OutputParameters=[{"Name": p["Name"], "Value": p["Value"]} for p in output_parameters],
            ClientRequestToken=request_token,
        )

    return _deliver(send, callback_token, SUCCESS, retrier, detail=str(output_parameters))


def send_step_failure(
    sagemaker: SageMakerClient,
    callback_token: str,
    reason: object,
    retrier: Retrier,
) -> CallbackOutcome:
    """Report failure with a readable reason (exceptions are described, long text truncated)."""
    failure_reason = to_failure_reason(reason)
    request_token = client_request_token(callback_token, FAILURE)

    def send() -> object:
        return sagemaker.send_pipeline_execution_step_failure(
            CallbackToken=callback_token,
            FailureReason=failure_reason,
            ClientRequestToken=request_token,
        )

    return _deliver(send, callback_token, FAILURE, retrier, detail=failure_reason)


def _deliver(
    send: Callable[[], object], callback_token: str, outcome: str, retrier: Retrier, *, detail: str
) -> CallbackOutcome:
    try:
        retrier.call(send, description=f"SendPipelineExecutionStep{outcome.capitalize()}")
    except ClientError as error:
        if not is_token_no_longer_valid(error):
            raise
        logger.warning(
            "Callback token %s was already used or is no longer valid; %s not sent (%s)",
            callback_token,
            outcome,
            describe_error(error),
        )
        return CallbackOutcome.ALREADY_REPORTED
    logger.info("Sent %s callback for token %s: %s", outcome, callback_token, detail)
    return CallbackOutcome.DELIVERED
