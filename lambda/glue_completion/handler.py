"""EventBridge 'Glue Job State Change' entry point (events completion mode)."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from glue_completion.logic import handle_glue_state_change, load_config
from pipeline_callback.clients import client_config
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="prep-glue-completion")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "glue_completion"})
config = load_config(os.environ)
glue_client = boto3.client("glue", config=client_config("glue"))
sagemaker_client = boto3.client("sagemaker", config=client_config("sagemaker"))
records = config.records.records(boto3.client("dynamodb", config=client_config("dynamodb")))

# Injected so tests can retry without really sleeping.
retry_sleep = time.sleep


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    retrier = Retrier(policy=LAMBDA_RETRY_POLICY, sleep=retry_sleep, time_left=time_left)
    # Errors raise: Lambda retries the event, then sends it to the on-failure destination (a queue with an alarm).
    outcome = handle_glue_state_change(
        event, config.glue_job_name, glue=glue_client, sagemaker=sagemaker_client, records=records, retrier=retrier
    )
    logger.info("Glue state change handled", outcome=outcome, job_run_id=event.get("detail", {}).get("jobRunId"))
    return {"outcome": outcome}
