"""Lambda entry point: EventBridge schedule → detect the interval that just closed.

Cold start parses the environment (see :mod:`anomaly_detector.config`) and creates the clients.
The event's ``time`` is "now"; ``{"interval_start": "<ISO time>"}`` re-runs one interval by hand.
A history rebuild (catch-up) stops ``history.DEFAULT_MARGIN_SECONDS`` before the invocation's timeout and
continues in the next run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from anomaly_detector.alerts import AlertTarget
from anomaly_detector.config import DetectorConfig, load_config
from anomaly_detector.feedback import FeedbackStore
from anomaly_detector.history import Deadline, IntervalSource
from anomaly_detector.logic import MetricsSink, detect_interval
from anomaly_detector.scoring import interval_for_event
from anomaly_detector.stores import IntervalStore
from anomaly_detector.wiring import wire

__all__ = ["handle", "interval_for_event", "lambda_handler"]

logger = Logger(service="anomaly-detector")

CONFIG = load_config(os.environ)
AWS = wire(CONFIG)
# Module names the tests and operators know (one wiring for both handlers: anomaly_detector.wiring).
STORE, TARGETS, FEEDBACK, HISTORY, METRICS = AWS.store, AWS.targets, AWS.feedback, AWS.history, AWS.metrics


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
