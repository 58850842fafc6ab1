"""Lambda function URL entry point of the approval page."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from approval.store import ApprovalStore
from approval_endpoint.config import load_config
from approval_endpoint.logic import handle_request
from pipeline_callback.clients import client_config
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="approval-endpoint")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "approval", "approval_endpoint"})
config = load_config(os.environ)
store = ApprovalStore(boto3.client("dynamodb", config=client_config("dynamodb")), config.table_name)
sagemaker_client = boto3.client("sagemaker", config=client_config("sagemaker"))


# The event is not logged: its path holds the reference, which works as a key until it is used.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_request(
        event,
        store=store,
        sagemaker=sagemaker_client,
        retrier=Retrier(policy=LAMBDA_RETRY_POLICY, time_left=lambda: context.get_remaining_time_in_millis() / 1000),
        clock=time.time,
    )
