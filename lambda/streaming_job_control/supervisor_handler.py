"""Lambda entry point of the streaming job's supervisor: a schedule and Glue's state-change events invoke it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from streaming_job_control.config import load_config
from streaming_job_control.supervisor import CloudWatchMetricsSink, supervise

logger = Logger(service="streaming-job-supervisor")

CONFIG = load_config(os.environ)
GLUE = boto3.client("glue")
EVENTS = boto3.client("events")
METRICS = CloudWatchMetricsSink(boto3.client("cloudwatch"), CONFIG.metric_namespace, CONFIG.settings.job_name)


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    report = supervise(
        glue=GLUE, events=EVENTS, metrics=METRICS, settings=CONFIG.settings, now=datetime.now(UTC), trigger=event
    )
    return {"action": report.action, "why": report.why, "detail": report.detail, **report.metrics()}
