"""EventBridge 'ECS Task State Change' entry point: the safety net for prep tasks that die silently."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier
from task_watchdog.logic import handle_task_state_change, load_config

logger = Logger(service="prep-task-watchdog")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "task_watchdog"})
config = load_config(os.environ)
sagemaker_client = boto3.client("sagemaker")
retrier = Retrier(policy=LAMBDA_RETRY_POLICY)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    outcome = handle_task_state_change(event, config.container_name, sagemaker=sagemaker_client, retrier=retrier)
    logger.info("Task state change handled", outcome=outcome, task_arn=event.get("detail", {}).get("taskArn"))
    return {"outcome": outcome}
