"""What the notifier does with one ApproveResults message. AWS clients are passed in, never created here.

Start: read the evaluation report, create the approval request (once per callback token), publish the
mail, then forget the link. Stop: close the request and fail the step with "stopped on request".
Errors are sorted by the shared rule (`pipeline_callback.faults.classify`): transient ones raise, so SQS
redelivers (and after `maxReceiveCount` the message lands in the alarmed DLQ); permanent ones (invalid
arguments, a report that is missing or cannot be used, an AWS refusal, a bug) fail the step at once with a
readable reason, so the run ends rather than waiting for an approval nobody was asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from approval.decisions import STOPPED_REASON
from approval.mail import compose_mail
from approval.message import ApprovalStart, ApprovalStop, InvalidApproval, parse_approval_message
from approval.report import ReportError, parse_report
from approval.store import RETENTION_AFTER_EXPIRY_SECONDS, STOPPED, ApprovalStore
from approval_notifier.config import NotifierConfig
from pipeline_callback.callback import send_step_failure
from pipeline_callback.errors import describe_error, error_code
from pipeline_callback.faults import classify
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# S3 errors that no retry fixes: the report is not where the step said it is.
_MISSING_REPORT_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"})


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
) -> str:
    message = parse_approval_message(body)
    if isinstance(message, InvalidApproval):
        outcome = send_step_failure(sagemaker, message.token, message.reason, retrier)
        return f"invalid message reported as failure ({outcome.value}): {message.reason}"
    if isinstance(message, ApprovalStop):
        return stop_request(message, store=store, sagemaker=sagemaker, retrier=retrier, clock=clock)
    try:
        return start_request(message, config, store=store, s3=s3, sns=sns, clock=clock)
    except ReportError as error:
        reason = f"Evaluation report {message.report_uri} cannot be used: {error}"
    except Exception as error:
        fault = classify(error)
        if fault.transient:
            raise
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
