"""What the notifier does with one ApproveResults message. AWS clients are passed in, never created here.

Start: read the evaluation report, create the approval request (once per callback token), publish the
mail, then forget the link. Stop: close the request and fail the step with "stopped on request".
Errors are sorted by the shared rule (`pipeline_callback.faults.classify`):
- transient ones (throttling, network errors, too little of the invocation left) are retried in process
  while the invocation has time (the retrier's deadline), then raise so SQS redelivers; on the message's
  last delivery (`Delivery.final`) the notifier gives up instead: it closes the request as FAILED and
  fails the step with a reason that says what to do, so the step is not left waiting for SageMaker's
  7-day callback timeout. Only if that fails too does the message go to the (alarmed) DLQ; a FAILED
  request whose failure did not get through is also re-sent by the expiry check;
- permanent ones (invalid arguments, a report that is missing or cannot be used, an AWS refusal, a bug)
  fail the step at once with a readable reason, so the run ends rather than waiting for an approval
  nobody was asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from approval.decisions import STOPPED_REASON, report_outcome
from approval.mail import compose_mail
from approval.message import ApprovalStart, ApprovalStop, InvalidApproval, parse_approval_message
from approval.report import ReportError, parse_report
from approval.store import FAILED, RETENTION_AFTER_EXPIRY_SECONDS, STOPPED, ApprovalStore
from approval_notifier.config import NotifierConfig
from pipeline_callback.callback import send_step_failure
from pipeline_callback.errors import describe_error, error_code
from pipeline_callback.faults import Classification, TransientError, classify
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# S3 errors that no retry fixes: the report is not where the step said it is.
_MISSING_REPORT_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"})
# A start is not begun with less of the invocation left than this (as the prep callback handler does):
# cut off half way, the whole batch would come back and the receive counts of every record would climb.
MIN_SECONDS_TO_START = 20.0
NOTIFIER = "approval notifier"


@dataclass(frozen=True)
class Delivery:
    """Which delivery of the message this is.

    SQS: "ApproximateReceiveCount - Returns the number of times a message has been received across all
    queues but not deleted." and "maxReceiveCount - The number of times a message is delivered to the
    source queue before being moved to the dead-letter queue. [...] When the ReceiveCount for a message
    exceeds the maxReceiveCount for a queue, Amazon SQS moves the message to the dead-letter-queue."
    (SQS API Reference, ReceiveMessage and SetQueueAttributes.) So the delivery whose count has reached
    maxReceiveCount is the last one this function sees. The count is approximate: a delivery it
    over-counts only gives up one delivery early, with a reason, never silently.
    """

    receive_count: int = 1
    max_receive_count: int = 5

    @property
    def final(self) -> bool:
        return self.receive_count >= self.max_receive_count


def delivery_of_record(approximate_receive_count: object, config: NotifierConfig) -> Delivery:
    """The delivery an SQS record is (its ApproximateReceiveCount attribute) against the queue's maxReceiveCount."""
    try:
        count = int(str(approximate_receive_count))
    except ValueError:
        # Lambda's SQS events always carry it; without it, the safe reading is "not the last delivery".
        logger.warning("SQS record without a usable ApproximateReceiveCount (%r)", approximate_receive_count)
        count = 1
    return Delivery(receive_count=count, max_receive_count=config.max_receive_count)


class NotEnoughTimeError(TransientError):
    """Too little of the invocation is left to send the request safely."""


class ApprovalFailureNotDeliveredError(Exception):
    """The notifier gave up and recorded FAILED, but SageMaker did not take the step failure."""


def handle_approval_message(
    body: str,
    config: NotifierConfig,
    *,
    store: ApprovalStore,
    s3: S3Client,
    sns: SNSClient,
    sagemaker: SageMakerClient,
    retrier: Retrier,
    clock: Clock,
    delivery: Delivery | None = None,
) -> str:
    delivery = delivery or Delivery(max_receive_count=config.max_receive_count)
    message = parse_approval_message(body)
    if isinstance(message, InvalidApproval):
        outcome = send_step_failure(sagemaker, message.token, message.reason, retrier)
        return f"invalid message reported as failure ({outcome.value}): {message.reason}"
    if isinstance(message, ApprovalStop):
        return stop_request(message, store=store, sagemaker=sagemaker, retrier=retrier, clock=clock)
    try:
        _require_time(retrier, MIN_SECONDS_TO_START)
        # start_request is safe to repeat: the request is created once per token (a repeat after a lost
        # Publish answer may mail twice, as a redelivery would; the link is the same).
        return retrier.call(
            lambda: start_request(message, config, store=store, s3=s3, sns=sns, clock=clock),
            description=f"Approval request for {message.pipeline_execution_arn}",
        )
    except ReportError as error:
        reason = f"Evaluation report {message.report_uri} cannot be used: {error}"
    except Exception as error:
        fault = classify(error)
        if fault.transient:
            if not delivery.final:
                raise  # SQS delivers the message again after its visibility timeout
            return give_up(
                message, error, fault, delivery, store=store, sagemaker=sagemaker, retrier=retrier, clock=clock
            )
        if error_code(error) in _MISSING_REPORT_CODES:
            reason = f"Evaluation report {message.report_uri} cannot be read: {describe_error(error)}"
        else:
            # A permanent fault does not heal on redelivery: end the step with what went wrong.
            logger.exception("Approval request for %s failed (%s)", message.pipeline_execution_arn, fault.reason)
            reason = f"Could not send the approval request ({fault.reason}): {describe_error(error)}"
    outcome = send_step_failure(sagemaker, message.token, reason, retrier)
    return f"approval request not sent; failure reported ({outcome.value}): {reason}"


def start_request(
    message: ApprovalStart,
    config: NotifierConfig,
    *,
    store: ApprovalStore,
    s3: S3Client,
    sns: SNSClient,
    clock: Clock,
) -> str:
    bucket, _, key = message.report_uri.removeprefix("s3://").partition("/")
    report = parse_report(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    now = int(clock())
    created = store.create(
        token=message.token,
        execution_arn=message.pipeline_execution_arn,
        report_uri=message.report_uri,
        summary=report,
        now=now,
        expires_at=now + config.expires_hours * 3600,
    )
    if created.stopped_before_creation:
        return "the execution was stopped before its approval request was created; nothing sent"
    if created.failed_before_creation:
        return "the step was already failed on an earlier delivery of this message; nothing sent"
    if created.already_notified or created.request is None or created.reference is None:
        return f"duplicate delivery: the approval mail for {message.pipeline_execution_arn} was already sent"
    mail = compose_mail(created.request, created.reference, config.endpoint_url, config.environment_name)
    sns.publish(TopicArn=config.topic_arn, Subject=mail.subject, Message=mail.message)
    store.mark_notified(message.token, now)
    return f"approval mail sent for {message.pipeline_execution_arn} (expires in {config.expires_hours} h)"


def stop_request(
    message: ApprovalStop, *, store: ApprovalStore, sagemaker: SageMakerClient, retrier: Retrier, clock: Clock
) -> str:
    """The execution is stopping: close the request (its links stop working) and answer the step."""
    now = int(clock())
    request = store.request_for_step(message.token)
    if request is None:
        store.record_stop_before_creation(message.token, now, now + RETENTION_AFTER_EXPIRY_SECONDS)
    else:
        store.decide(
            request.key, status=STOPPED, decided_by="SageMaker", comment="", via="stop", now=now, allow_expired=True
        )
    # The execution cannot finish stopping until the step is answered.
    outcome = send_step_failure(sagemaker, message.token, STOPPED_REASON, retrier)
    if request is not None:
        current = store.get_by_key(request.key)
        if current is not None and current.status != "PENDING" and current.delivered_at is None:
            store.mark_delivered(request.key, now)
    return f"stop request answered with '{STOPPED_REASON}' ({outcome.value})"


def give_up(
    message: ApprovalStart,
    error: BaseException,
    fault: Classification,
    delivery: Delivery,
    *,
    store: ApprovalStore,
    sagemaker: SageMakerClient,
    retrier: Retrier,
    clock: Clock,
) -> str:
    """The last delivery failed transiently: close the request and fail the step, so nothing waits.

    Raises (so the message goes to the alarmed DLQ) only when SageMaker did not take the failure.
    """
    why = "out of time" if isinstance(error, NotEnoughTimeError) else fault.reason
    reason = (
        f"Could not send the approval request after {delivery.receive_count} attempts ({why}): "
        f"{describe_error(error)}; fix the cause, then retry or re-run the pipeline execution"
    )
    logger.error("Giving up on the approval request for %s: %s", message.pipeline_execution_arn, reason)
    now = int(clock())
    closed = None
    try:
        request = store.request_for_step(message.token)
        if request is None:
            store.record_failure_before_creation(message.token, now, now + RETENTION_AFTER_EXPIRY_SECONDS, reason)
        else:
            result = store.decide(
                request.key,
                status=FAILED,
                decided_by=NOTIFIER,
                comment=reason,
                via="notifier",
                now=now,
                allow_expired=True,
            )
            if not result.won:
                # The mail did get out and someone decided (or the run stopped): that decision stands.
                return f"not given up: the approval request was already {result.request.status}"
            closed = result.request
    except Exception as store_error:
        # The step failure matters more than the record: send it anyway.
        logger.error("Could not record the failed approval request: %s", describe_error(store_error))
    if closed is not None:
        # The one path every decision takes to SageMaker (idempotent; the expiry check re-sends it).
        if not report_outcome(closed, sagemaker, retrier, store, now):
            raise ApprovalFailureNotDeliveredError(f"step failure for {message.pipeline_execution_arn} not delivered")
    else:
        send_step_failure(sagemaker, message.token, reason, retrier)
    return f"gave up on the last delivery; step failed: {reason}"


def _require_time(retrier: Retrier, seconds: float) -> None:
    if retrier.time_left is not None and (left := retrier.time_left()) < seconds:
        raise NotEnoughTimeError(f"only {left:.1f}s of the invocation left, {seconds:.0f}s needed")
