"""SQS-triggered entry point: one SageMaker callback message per record, partial batch failures."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from callback_handler.config import load_config
from callback_handler.logic import handle_callback_message
from pipeline_callback.message import UnanswerableMessageError

logger = Logger(service="sagemaker-callback-handler")
# Shared-code log lines (retries, callbacks sent) come out in the same structured format.
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "callback_handler"})
config = load_config(os.environ)
ecs_client = boto3.client("ecs")
glue_client = boto3.client("glue")
sagemaker_client = boto3.client("sagemaker")
# Report item failures even when every record in the batch failed, instead of raising: only the
# bad records are retried/dead-lettered (needs ReportBatchItemFailures on the event source mapping).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Injected so tests can retry without really sleeping.
retry_sleep = time.sleep


def record_handler(record: SQSRecord) -> None:
    try:
        outcome = handle_callback_message(
            record.body,
            config,
            ecs=ecs_client,
            glue=glue_client,
            sagemaker=sagemaker_client,
            sleep=retry_sleep,
            random_fraction=random.random,
        )
    except UnanswerableMessageError as error:
        # No valid token means no callback is possible: fail the item so it ends in the DLQ.
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
