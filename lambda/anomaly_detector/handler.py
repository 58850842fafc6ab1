"""Lambda entry point: EventBridge schedule → detect the interval that just closed.

Cold start parses the environment (see :mod:`anomaly_detector.config`) and creates the clients.
The event's ``time`` is "now"; ``{"interval_start": "<ISO time>"}`` re-runs one interval by hand.
A history rebuild (catch-up) stops ``history.DEFAULT_MARGIN_SECONDS`` before the invocation's timeout and
continues in the next run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from anomaly_detector.alerts import AlertTarget, LambdaAlertTarget, SnsAlertTarget
from anomaly_detector.config import DetectorConfig, load_config
from anomaly_detector.feedback import FeedbackStore, S3FeedbackStore
from anomaly_detector.history import Deadline, IntervalSource, S3IntervalSource
from anomaly_detector.logic import CloudWatchMetricsSink, MetricsSink, detect_interval
from anomaly_detector.scoring import closed_interval_start, parse_time
from anomaly_detector.stores import IntervalStore, S3IntervalStore

logger = Logger(service="anomaly-detector")

CONFIG = load_config(os.environ)
S3 = boto3.client("s3")  # shared by the history reader's threads (see anomaly_detector.history)
STORE = S3IntervalStore(
    s3=S3,
    bucket=CONFIG.data_bucket,
    intervals_prefix=CONFIG.intervals_prefix,
    anomalies_prefix=CONFIG.anomalies_prefix,
    state_key=CONFIG.state_key,
)
# Every alert goes to the environment's topic, and to the user's function when streaming.alert_lambda_arn is set.
TARGETS: list[AlertTarget] = [SnsAlertTarget(boto3.client("sns"), CONFIG.topic_arn)]
if CONFIG.alert_lambda_arn:
    TARGETS.append(LambdaAlertTarget(boto3.client("lambda"), CONFIG.alert_lambda_arn))
FEEDBACK = S3FeedbackStore(S3, CONFIG.data_bucket, CONFIG.feedback_prefix)
HISTORY = (
    S3IntervalSource(S3, CONFIG.data_bucket, CONFIG.intervals_prefix, CONFIG.aggregates_prefix)
    if CONFIG.aggregates_prefix
    else None
)
METRICS = CloudWatchMetricsSink(boto3.client("cloudwatch"), CONFIG.metric_namespace)


def interval_for_event(event: Mapping[str, Any], frequency_minutes: int, clock: datetime | None = None) -> datetime:
    """The interval to process: an explicit ``interval_start``, else the one closed by the event's ``time``."""
    if event.get("interval_start"):
        return parse_time(str(event["interval_start"]))
    now = parse_time(str(event["time"])) if event.get("time") else (clock or datetime.now(UTC))
    return closed_interval_start(now, frequency_minutes)


def handle(
    event: Mapping[str, Any],
    *,
    config: DetectorConfig,
    store: IntervalStore,
    targets: Sequence[AlertTarget],
    metrics: MetricsSink,
    feedback: FeedbackStore | None = None,
    history: IntervalSource | None = None,
    deadline: Deadline | None = None,
) -> dict[str, object]:
    interval_start = interval_for_event(event, config.settings.frequency_minutes)
    report = detect_interval(
        store=store,
        alert_targets=targets,
        feedback=feedback,
        metrics=metrics,
        interval_start=interval_start,
        settings=config.settings,
        history=history,
        deadline=deadline,
    )
    return report.summary()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return handle(
        event,
        config=CONFIG,
        store=STORE,
        targets=TARGETS,
        metrics=METRICS,
        feedback=FEEDBACK,
        history=HISTORY,
        deadline=Deadline.for_lambda(context),
    )
