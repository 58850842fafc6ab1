"""SQS-triggered entry point: one SageMaker callback message per record, partial batch failures."""

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

from callback_handler.config import load_config
from callback_handler.logic import Clients, HandlerRun, handle_callback_message
from pipeline_callback.clients import client_config
from pipeline_callback.message import UnanswerableMessageError
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="sagemaker-callback-handler")
# Shared-code log lines (retries, callbacks sent) come out in the same structured format.
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "callback_handler"})
config = load_config(os.environ)
ecs_client = boto3.client("ecs", config=client_config("ecs"))
glue_client = boto3.client("glue", config=client_config("glue"))
sagemaker_client = boto3.client("sagemaker", config=client_config("sagemaker"))
dynamodb_client = boto3.client("dynamodb", config=client_config("dynamodb"))
# Report item failures even when every record in the batch failed, instead of raising: only the
# bad records are retried/dead-lettered (needs ReportBatchItemFailures on the event source mapping).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# A record is not begun with less time than this left: it would be cut off half way, and every
# record of the batch would come back (the receive counts of records never tried would climb).
MIN_SECONDS_PER_RECORD = 20.0
# Injected so tests can retry without really sleeping.
retry_sleep: Callable[[float], None] = time.sleep
# The running invocation's remaining time (set per invocation from the Lambda context).
_remaining_seconds: Callable[[], float] = lambda: 900.0  # noqa: E731


class NotEnoughTimeError(Exception):
    """Too little of the invocation is left to handle this record safely; SQS delivers it again."""


def _time_left() -> float:
    return _remaining_seconds()


def record_handler(record: SQSRecord) -> None:
    if _time_left() < MIN_SECONDS_PER_RECORD:
        logger.warning("Not enough time left for this record; it will be delivered again", message_id=record.message_id)
        raise NotEnoughTimeError(f"{_time_left():.1f}s left")
    assert config.records is not None
    retrier = Retrier(policy=LAMBDA_RETRY_POLICY, sleep=retry_sleep, time_left=_time_left)
    clients = Clients(
        ecs=ecs_client, glue=glue_client, sagemaker=sagemaker_client, records=config.records.records(dynamodb_client)
    )
    try:
        outcome = handle_callback_message(record.body, HandlerRun(config=config, clients=clients, retrier=retrier))
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
    global _remaining_seconds  # one invocation at a time per execution environment
    _remaining_seconds = lambda: context.get_remaining_time_in_millis() / 1000.0  # noqa: E731
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
