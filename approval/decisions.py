"""Deciding a request and telling SageMaker: the one path the page, the CLI and the expiry check share."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from approval.message import APPROVAL_COMMENT_OUTPUT, APPROVED_BY_OUTPUT
from approval.store import APPROVED, EXPIRED, FAILED, REJECTED, STOPPED, ApprovalRequest, ApprovalStore
from pipeline_callback.callback import CallbackOutcome, send_step_failure, send_step_success
from pipeline_callback.errors import describe_error
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

APPROVE = "approve"
REJECT = "reject"
DECISION_STATUS = {APPROVE: APPROVED, REJECT: REJECTED}
EXPIRED_REASON = "approval expired"
STOPPED_REASON = "stopped on request"
MAX_APPROVER_CHARS = 100
# CreateModelPackage's CustomerMetadataProperties values are at most 256 characters.
MAX_COMMENT_CHARS = 256


@dataclass(frozen=True)
class DecisionOutcome:
    """What happened to one attempt to decide; `message` is what the page or the CLI tells the person."""

    won: bool
    request: ApprovalRequest
    reported: bool
    message: str


def failure_reason(request: ApprovalRequest) -> str:
    if request.status == EXPIRED:
        return EXPIRED_REASON
    if request.status == STOPPED:
        return STOPPED_REASON
    if request.status == FAILED:
        return request.comment or "the approval request could not be sent"
    comment = f": {request.comment}" if request.comment else ""
    return f"Rejected by {request.decided_by}{comment}"


def report_outcome(
    request: ApprovalRequest, sagemaker: SageMakerClient, retrier: Retrier, store: ApprovalStore, now: int
) -> bool:
    """Send the decided request's outcome to its callback step (idempotent); True once SageMaker has it."""
    try:
        if request.status == APPROVED:
            outcome = send_step_success(
                sagemaker,
                request.token,
                [
                    {"Name": APPROVED_BY_OUTPUT, "Value": request.decided_by or ""},
                    {"Name": APPROVAL_COMMENT_OUTPUT, "Value": request.comment or ""},
                ],
                retrier,
            )
        else:
            outcome = send_step_failure(sagemaker, request.token, failure_reason(request), retrier)
    except Exception as error:
        # The decision is recorded; the expiry check redelivers it from the open index.
        logger.error("Decision on %s recorded but not yet reported: %s", request.execution_arn, describe_error(error))
        return False
    if outcome is CallbackOutcome.ALREADY_REPORTED:
        logger.warning("The step of %s was no longer waiting (stopped or already answered)", request.execution_arn)
    store.mark_delivered(request.key, now)
    return True


def decide(
    store: ApprovalStore,
    sagemaker: SageMakerClient,
    retrier: Retrier,
    *,
    key: str,
    decision: str,
    decided_by: str,
    comment: str,
    via: str,
    now: int,
    form_token: str | None = None,
) -> DecisionOutcome:
    """Approve or reject once; a second attempt (double click, the other button, the CLI) learns who won."""
    if decision not in DECISION_STATUS:
        raise ValueError(f"decision must be {APPROVE!r} or {REJECT!r}, not {decision!r}")
    result = store.decide(
        key,
        status=DECISION_STATUS[decision],
        decided_by=decided_by,
        comment=comment,
        via=via,
        now=now,
        form_token=form_token,
    )
    if not result.won:
        return DecisionOutcome(won=False, request=result.request, reported=False, message=describe(result.request, now))
    reported = report_outcome(result.request, sagemaker, retrier, store, now)
    verb = "Approved" if decision == APPROVE else "Rejected"
    message = f"{verb}. The pipeline run has been told." if reported else (
        f"{verb}. Your decision is recorded; the pipeline will be told within minutes (SageMaker did not answer)."
    )
    return DecisionOutcome(won=True, request=result.request, reported=reported, message=message)


def describe(request: ApprovalRequest, now: int) -> str:
    """What happened to a request someone else (or the clock) decided."""
    from datetime import UTC, datetime

    def at(epoch: int | None) -> str:
        return datetime.fromtimestamp(epoch or 0, UTC).strftime("%Y-%m-%d %H:%M UTC")

    if request.status == APPROVED:
        return f"Already approved by {request.decided_by} at {at(request.decided_at)}."
    if request.status == REJECTED:
        return f"Already rejected by {request.decided_by} at {at(request.decided_at)}."
    if request.status == EXPIRED or (request.status == "PENDING" and now >= request.expires_at):
        return f"This approval request expired at {at(request.expires_at)}; the run was failed with 'approval expired'."
    if request.status == STOPPED:
        return f"The pipeline run was stopped at {at(request.decided_at)}; there is nothing left to decide."
    if request.status == FAILED:
        return f"The pipeline run was failed at {at(request.decided_at)} before anyone decided: {request.comment}"
    return "This approval request is still open."


def clean_text(value: str, limit: int) -> str:
    """One line of printable text, at most `limit` characters (for names and comments from a form or a CLI)."""
    printable = "".join(character if character.isprintable() else " " for character in value)
    return " ".join(printable.split())[:limit]
