"""SQS-triggered entry point of the approval notifier: one ApproveResults message per record."""

from __future__ import annotations

import os
import time
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
from approval_notifier.logic import handle_approval_message
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


def record_handler(record: SQSRecord) -> None:
    try:
        outcome = handle_approval_message(
            record.body,
            config,
            store=store,
            s3=s3_client,
            sns=sns_client,
            sagemaker=sagemaker_client,
            retrier=Retrier(policy=LAMBDA_RETRY_POLICY),
            clock=time.time,
        )
    except UnanswerableMessageError as error:
        logger.error(
            "Message cannot be answered; leaving it for the DLQ", message_id=record.message_id, reason=str(error)
        )
        raise
    except Exception:
        logger.exception("Message not processed; it will be retried", message_id=record.message_id)
        raise
    logger.info("Message processed", message_id=record.message_id, outcome=outcome)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
