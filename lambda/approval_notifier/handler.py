"""SQS-triggered entry point of the approval notifier: one ApproveResults message per record."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from approval.store import ApprovalStore
from approval_notifier.config import load_config
from approval_notifier.logic import Delivery, delivery_of_record, handle_approval_message
from pipeline_callback.clients import client_config
from pipeline_callback.message import UnanswerableMessageError
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="approval-notifier")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "approval", "approval_notifier"})
config = load_config(os.environ)
store = ApprovalStore(boto3.client("dynamodb", config=client_config("dynamodb")), config.table_name)
s3_client = boto3.client("s3", config=client_config("s3"))
sns_client = boto3.client("sns", config=client_config("sns"))
sagemaker_client = boto3.client("sagemaker", config=client_config("sagemaker"))
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Retries stop this long before the invocation's end (the prep callback handler's rule, through the same
# Retrier): on a message's last delivery the notifier still needs the time to fail the step with a reason.
RETRY_RESERVE_SECONDS = 10.0
# Injected so tests can retry without really sleeping.
retry_sleep: Callable[[float], None] = time.sleep
# The running invocation's remaining time (set per invocation from the Lambda context).
_remaining_seconds: Callable[[], float] = lambda: 60.0  # noqa: E731


def _time_left() -> float:
    return _remaining_seconds()


def delivery_of(record: SQSRecord) -> Delivery:
    try:
        count: object = record.attributes.approximate_receive_count
    except KeyError:
        count = None
    return delivery_of_record(count, config)


def record_handler(record: SQSRecord) -> None:
    delivery = delivery_of(record)
    try:
        outcome = handle_approval_message(
            record.body,
            config,
            store=store,
            s3=s3_client,
            sns=sns_client,
            sagemaker=sagemaker_client,
            retrier=Retrier(
                policy=LAMBDA_RETRY_POLICY,
                sleep=retry_sleep,
                time_left=_time_left,
                reserve_seconds=RETRY_RESERVE_SECONDS,
            ),
            clock=time.time,
            delivery=delivery,
        )
    except UnanswerableMessageError as error:
        logger.error(
            "Message cannot be answered; leaving it for the DLQ", message_id=record.message_id, reason=str(error)
        )
        raise
    except Exception:
        logger.exception(
            "Message not processed; it will be retried" if not delivery.final else "Message goes to the DLQ",
            message_id=record.message_id,
            receive_count=delivery.receive_count,
        )
        raise
    logger.info("Message processed", message_id=record.message_id, outcome=outcome)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _remaining_seconds  # one invocation at a time per execution environment
    _remaining_seconds = lambda: context.get_remaining_time_in_millis() / 1000.0  # noqa: E731
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
