"""Lambda entry point of the partitioned fan-out (``streaming.detector_partitions`` > 1), called by the state machine.

Three modes, chosen by the event (see :mod:`anomaly_detector.fanout`):

- ``{"partition": p, "partitions": P, "interval_start": ..., "rerun": bool}`` -> score one partition;
- ``{"form_groups": true, "partitions": P, "interval_start": ..., "rerun": bool}`` -> the final step;
- anything else is the execution's input (the EventBridge scheduled event, whose ``time`` closes an interval, or a
  hand-written ``{"interval_start": "<ISO time>"}``, a re-run) -> the interval to run and the partition list the
  state machine's Map iterates over.

The same code is deployed as two functions with different roles: the partition scorer (no reserved concurrency)
and the group former (reserved concurrency 1, also resolving the interval). Cold start validates the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from anomaly_detector.alerts import AlertTarget
from anomaly_detector.config import ConfigError, DetectorConfig, load_config
from anomaly_detector.fanout import form_interval_groups, score_partition
from anomaly_detector.feedback import FeedbackStore
from anomaly_detector.history import Deadline, IntervalSource
from anomaly_detector.logic import MetricsSink
from anomaly_detector.scoring import format_time, interval_for_event, parse_time
from anomaly_detector.stores import DocumentStore, IntervalStore, S3DocumentStore
from anomaly_detector.wiring import wire

logger = Logger(service="anomaly-detector")


class EventError(ValueError):
    """The event does not fit this function's configuration; the message names the field."""


def handle(
    event: Mapping[str, Any],
    *,
    config: DetectorConfig,
    store: IntervalStore,
    documents: DocumentStore,
    targets: Sequence[AlertTarget],
    metrics: MetricsSink,
    feedback: FeedbackStore | None = None,
    history: IntervalSource | None = None,
    deadline: Deadline | None = None,
) -> dict[str, object]:
    settings = config.settings
    if "partition" in event or event.get("form_groups"):
        partitions = _int_field(event, "partitions")
        if partitions != config.partitions:
            raise EventError(
                f"event partitions {partitions} differs from the function's PARTITIONS {config.partitions}"
            )
        if not event.get("interval_start"):
            raise EventError("event field interval_start is required")
        common: dict[str, Any] = {
            "store": store,
            "documents": documents,
            "interval_start": parse_time(str(event["interval_start"])),
            "settings": settings,
            "state_key": config.state_key,
            "scores_prefix": config.scores_prefix or "",
            "rerun": bool(event.get("rerun", False)),
        }
        if event.get("form_groups"):
            return form_interval_groups(
                **common, partitions=partitions, metrics=metrics, alert_targets=targets, feedback=feedback
            ).summary()
        partition = _int_field(event, "partition")
        if not 0 <= partition < partitions:
            raise EventError(f"event partition must be 0..{partitions - 1}, got {partition}")
        return score_partition(
            **common, partition=partition, partitions=partitions, history=history, deadline=deadline
        ).summary()
    # The execution's input: which interval, and the Map's items.
    interval_start = interval_for_event(event, settings.frequency_minutes)
    return {
        "interval_start": format_time(interval_start),
        "rerun": bool(event.get("interval_start")),
        "partitions": config.partitions,
        "partition_list": list(range(config.partitions)),
    }


def _int_field(event: Mapping[str, Any], name: str) -> int:
    value = event.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"event field {name} must be an integer, got {value!r}")
    return value


CONFIG = load_config(os.environ)
if CONFIG.partitions < 2 or CONFIG.scores_prefix is None:
    raise ConfigError("the fan-out handler needs PARTITIONS > 1 and SCORES_PREFIX")
AWS = wire(CONFIG)
DOCUMENTS = S3DocumentStore(AWS.s3, CONFIG.data_bucket)
STORE, TARGETS, FEEDBACK, HISTORY, METRICS = AWS.store, AWS.targets, AWS.feedback, AWS.history, AWS.metrics


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return handle(
        event,
        config=CONFIG,
        store=STORE,
        documents=DOCUMENTS,
        targets=TARGETS,
        metrics=METRICS,
        feedback=FEEDBACK,
        history=HISTORY,
        deadline=Deadline.for_lambda(context),
    )
