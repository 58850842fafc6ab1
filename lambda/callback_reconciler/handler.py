"""EventBridge Scheduler entry point: one reconciliation pass, and the metrics the alarms watch."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from callback_reconciler.config import load_config
from callback_reconciler.logic import ReconcilerClients, reconcile
from pipeline_callback.clients import client_config
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

logger = Logger(service="callback-reconciler")
metrics = Metrics(service="callback-reconciler")
copy_config_to_registered_loggers(source_logger=logger, include={"pipeline_callback", "callback_reconciler"})
config = load_config(os.environ)
clients = ReconcilerClients(
    sagemaker=boto3.client("sagemaker", config=client_config("sagemaker")),
    glue=boto3.client("glue", config=client_config("glue")),
    records=config.records.records(boto3.client("dynamodb", config=client_config("dynamodb"))),
    ecs=boto3.client("ecs", config=client_config("ecs")) if config.cluster_arn else None,
)

# Injected so tests can retry without really sleeping.
retry_sleep = time.sleep


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    retrier = Retrier(policy=LAMBDA_RETRY_POLICY, sleep=retry_sleep, time_left=time_left)
    summary = reconcile(config, clients, retrier, time_left=time_left)
    # The "callback step waited longer than expected" alarm watches this metric.
    metrics.add_metric(name="OverdueCallbackSteps", unit=MetricUnit.Count, value=summary.overdue)
    metrics.add_metric(name="ReconciledCallbackSteps", unit=MetricUnit.Count, value=summary.resolved)
    metrics.add_metric(name="ReconcilerErrors", unit=MetricUnit.Count, value=len(summary.errors))
    if summary.errors:
        # Fail the invocation so the function-errors alarm fires; the next run tries again.
        raise RuntimeError(f"could not reconcile {len(summary.errors)} token(s): {summary.errors}")
    return {"examined": summary.examined, "overdue": summary.overdue, "actions": summary.actions}
