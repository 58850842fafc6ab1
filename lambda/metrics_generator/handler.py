"""Lambda entry point: on each EventBridge tick, write the last window of synthetic events to Kinesis.

Cold start parses the environment (see :mod:`metrics_generator.config`) and creates the client.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from metrics_generator.config import GeneratorConfig, load_config
from metrics_generator.publisher import put_records_with_retry, to_entries
from metrics_generator.records import GeneratorSettings, generate_records

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

logger = Logger(service="metrics-generator")

CONFIG = load_config(os.environ)
KINESIS = boto3.client("kinesis")

def event_time(event: Mapping[str, Any], clock: Callable[[], datetime]) -> datetime:
    if event.get("time"):
        return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).astimezone(UTC)
    return clock()


def handle(
    event: Mapping[str, Any],
    *,
    config: GeneratorConfig,
    kinesis: KinesisClient,
    rng: random.Random,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, object]:
    now = event_time(event, clock)
    # Each run covers its schedule's window (rate(N minutes)) ending at the event's time.
    window = timedelta(minutes=config.window_minutes)
    settings = GeneratorSettings(
        records_per_minute=max(1, config.records_per_invocation // config.window_minutes),
        anomalies=(config.anomaly_target,) if config.anomaly_target is not None else (),
    )
    records = generate_records(now - window, now, rng, settings, count=config.records_per_invocation)
    delivered = put_records_with_retry(kinesis, config.stream_name, to_entries(records), sleep=sleep)
    logger.info("Records delivered", extra={"records": delivered, "window_end": now.isoformat()})
    return {"records": delivered, "window_end": now.isoformat()}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return handle(event, config=CONFIG, kinesis=KINESIS, rng=random.Random())
