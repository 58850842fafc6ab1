"""Sending the callback step's outcome to SageMaker, idempotently and at most once per outcome."""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pipeline_callback.errors import describe_error, error_code, to_failure_reason
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import FAILURE, SUCCESS, TokenRecord, TokenRecords

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)


# SendPipelineExecutionStepSuccess/Failure document two errors besides ResourceLimitExceeded:
# "ConflictException: There was a conflict when you attempted to modify a SageMaker entity" and
# "ResourceNotFound: Resource being access is not found." (SageMaker API Reference). Those codes
# mean the step is no longer waiting on this token. Nothing is guessed from message text: a
# ValidationException is a real error (for example an output value that is too long) and raises.
# Whether a step was already answered by us is known from the token record, not from SageMaker.
_TOKEN_NO_LONGER_VALID_CODES = frozenset({"ConflictException", "ResourceNotFound"})


class CallbackOutcome(enum.Enum):
    DELIVERED = "delivered"
    ALREADY_REPORTED = "already_reported"


def client_request_token(callback_token: str, outcome: str) -> str:
    """Deterministic idempotency token: a retried callback with the same outcome is the same request.

    The API wants 32..128 characters; a SHA-256 hex digest is 64.
    """
    return hashlib.sha256(f"sagemaker-callback:{callback_token}:{outcome}".encode()).hexdigest()


def is_token_no_longer_valid(error: BaseException) -> bool:
    """True when SageMaker rejected a callback with a documented 'step no longer waiting' code."""
    return error_code(error) in _TOKEN_NO_LONGER_VALID_CODES


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


@dataclass(frozen=True)
class Report:
    """What report_outcome did: ``sent`` is the outcome SageMaker now has ('' when nothing was sent)."""

    outcome: str
    sent: bool
    note: str


def report_outcome(
    records: TokenRecords,
    sagemaker: SageMakerClient,
    callback_token: str,
    *,
    outcome: str,
    reason: object = "",
    outputs: list[dict[str, str]] | None = None,
    decided_by: str,
    retrier: Retrier,
    work_ended: bool,
) -> Report:
    """Decide the step's outcome once (first decider wins, in the token record), then deliver it.

    A reporter that comes second never sends a different answer: it re-sends the recorded one if it
    has not reached SageMaker yet (the same request, idempotent through ClientRequestToken), and does
    nothing if it has. Delivery errors are noted on the record and raised; the reconciler re-sends.
    """
    failure_reason = to_failure_reason(reason) if outcome == FAILURE else ""
    decision = records.decide(
        callback_token, outcome=outcome, reason=failure_reason, outputs=outputs, decided_by=decided_by
    )
    record = decision.record
    # A reporter that comes second, or the same one again (a redelivered stop), never sends twice.
    if not decision.first or record.reported:
        if record.reported:
            if work_ended and not record.work_ended_at:
                records.mark_work_ended(callback_token, note=f"{decided_by}: work ended")
            logger.info(
                "Step for token %s was already answered (%s, by %s); %s not sent",
                callback_token,
                record.outcome,
                record.decided_by,
                outcome,
            )
            return Report(outcome=record.outcome, sent=False, note=f"already answered: {record.outcome}")
        logger.info(
            "Step for token %s was already decided (%s, by %s); delivering that instead of %s",
            callback_token,
            record.outcome,
            record.decided_by,
            outcome,
        )
    return deliver_recorded_outcome(
        records, sagemaker, record, delivered_by=decided_by, retrier=retrier, work_ended=work_ended
    )


def deliver_recorded_outcome(
    records: TokenRecords,
    sagemaker: SageMakerClient,
    record: TokenRecord,
    *,
    delivered_by: str,
    retrier: Retrier,
    work_ended: bool,
) -> Report:
    """Send the outcome the record holds (exactly as decided), then mark the record reported."""
    callback_token = record.token
    try:
        if record.outcome == SUCCESS:
            delivered = send_step_success(sagemaker, callback_token, record.output_parameters(), retrier)
        else:
            delivered = send_step_failure(sagemaker, callback_token, record.outcome_reason, retrier)
    except Exception as error:
        records.note_error(
            callback_token, f"{delivered_by} could not deliver {record.outcome}: {describe_error(error)}"
        )
        raise
    note = f"{record.outcome} {delivered.value} by {delivered_by}"
    records.mark_reported(callback_token, note=note, work_ended=work_ended)
    return Report(outcome=record.outcome, sent=True, note=note)
