"""EventBridge-scheduled entry point of the approval expiry check."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from approval.store import ApprovalStore
from approval_expiry.config import load_config
from approval_expiry.logic import check_open_requests
from pipeline_callback.clients import client_config
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="approval-expiry")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "approval", "approval_expiry"})
config = load_config(os.environ)
store = ApprovalStore(boto3.client("dynamodb", config=client_config("dynamodb")), config.table_name)
sagemaker_client = boto3.client("sagemaker", config=client_config("sagemaker"))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = check_open_requests(
        store,
        sagemaker=sagemaker_client,
        retrier=Retrier(policy=LAMBDA_RETRY_POLICY, time_left=lambda: context.get_remaining_time_in_millis() / 1000),
        clock=time.time,
    )
    logger.info("Approval expiry check", summary=run.summary())
    if run.errors:
        # Fail the invocation so the errors alarm fires; the next run retries what is still open.
        raise RuntimeError(run.summary())
    return {"expired": len(run.expired), "redelivered": len(run.redelivered)}
