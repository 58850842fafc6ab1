"""Lambda entry point of the custom-resource Provider (``onEvent``) for the Glue streaming job."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from streaming_job_control.logic import WaitPolicy, handle_event

logger = Logger(service="streaming-job-control")

GLUE = boto3.client("glue")
EVENTS = boto3.client("events")

MAX_STOP_WAIT_SECONDS = 600.0
# Leave time to answer CloudFormation before the Lambda itself times out.
RESPONSE_MARGIN_SECONDS = 30.0


@logger.inject_lambda_context(log_event=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS
    policy = WaitPolicy(timeout_seconds=max(0.0, min(MAX_STOP_WAIT_SECONDS, budget)))
    return handle_event(event, GLUE, policy=policy, events=EVENTS)
