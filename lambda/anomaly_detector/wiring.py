"""The detector's AWS collaborators, built once at a handler's cold start from its validated config.

Both entry points (:mod:`anomaly_detector.handler`, the single detector, and
:mod:`anomaly_detector.fanout_handler`, the fan-out's functions) wire the same stores, alert targets,
feedback labels, history source and metrics sink from the same environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from anomaly_detector.alerts import AlertTarget, LambdaAlertTarget, SnsAlertTarget
from anomaly_detector.config import DetectorConfig
from anomaly_detector.feedback import S3FeedbackStore
from anomaly_detector.history import S3IntervalSource
from anomaly_detector.logic import CloudWatchMetricsSink
from anomaly_detector.stores import S3IntervalStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class AwsWiring:
    s3: S3Client  # one client, shared by the history reader's threads (see anomaly_detector.history)
    store: S3IntervalStore
    targets: list[AlertTarget]
    feedback: S3FeedbackStore
    history: S3IntervalSource | None
    metrics: CloudWatchMetricsSink


def wire(config: DetectorConfig, client: Any = boto3.client) -> AwsWiring:
    s3 = client("s3")
    # Every alert goes to the environment's topic, and to the user's function when streaming.alert_lambda_arn is set.
    targets: list[AlertTarget] = [SnsAlertTarget(client("sns"), config.topic_arn)]
    if config.alert_lambda_arn:
        targets.append(LambdaAlertTarget(client("lambda"), config.alert_lambda_arn))
    return AwsWiring(
        s3=s3,
        store=S3IntervalStore(
            s3=s3,
            bucket=config.data_bucket,
            intervals_prefix=config.intervals_prefix,
            anomalies_prefix=config.anomalies_prefix,
            state_key=config.state_key,
        ),
        targets=targets,
        feedback=S3FeedbackStore(s3, config.data_bucket, config.feedback_prefix),
        history=(
            S3IntervalSource(s3, config.data_bucket, config.intervals_prefix, config.aggregates_prefix)
            if config.aggregates_prefix
            else None
        ),
        metrics=CloudWatchMetricsSink(client("cloudwatch"), config.metric_namespace),
    )
