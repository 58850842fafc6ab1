"""Generator Lambda: environment validation and one end-to-end invocation against moto Kinesis."""

from __future__ import annotations

import importlib
import json
import random
import sys
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from metrics_generator.config import ConfigError, GeneratorConfig, load_config
from moto import mock_aws


def test_defaults_apply_when_only_the_stream_is_given() -> None:
    assert load_config({"STREAM_NAME": "events"}) == GeneratorConfig("events", 500, None, 1.0, 1)


def test_full_environment_is_parsed() -> None:
    config = load_config(
        {"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "50", "ANOMALY_MARKETPLACE": "de", "ANOMALY_FACTOR": "4"}
    )
    assert config == GeneratorConfig("s", 50, "de", 4.0)


@pytest.mark.parametrize(
    ("env", "bad_variable"),
    [
        ({}, "STREAM_NAME"),
        ({"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "many"}, "RECORDS_PER_INVOCATION"),
        ({"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "0"}, "RECORDS_PER_INVOCATION"),
        ({"STREAM_NAME": "s", "ANOMALY_MARKETPLACE": "fr"}, "ANOMALY_MARKETPLACE"),
        ({"STREAM_NAME": "s", "ANOMALY_FACTOR": "-1"}, "ANOMALY_FACTOR"),
        ({"STREAM_NAME": "s", "ANOMALY_FACTOR": "nan"}, "ANOMALY_FACTOR"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], bad_variable: str) -> None:
    with pytest.raises(ConfigError, match=bad_variable):
        load_config(env)


def test_handler_writes_the_configured_number_of_records(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # Given a stream and the Lambda's environment
    monkeypatch.setenv("STREAM_NAME", "events")
    monkeypatch.setenv("RECORDS_PER_INVOCATION", "40")
    with mock_aws():
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="events", ShardCount=1)
        sys.modules.pop("metrics_generator.handler", None)
        handler = importlib.import_module("metrics_generator.handler")

        # When the scheduled event arrives
        result = handler.lambda_handler({"time": "2025-03-01T12:00:00Z"}, lambda_context)

        # Then 40 records from the minute before the event are on the stream
        shard_id = kinesis.describe_stream(StreamName="events")["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName="events", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
        records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    assert result["records"] == 40
    assert len(records) == 40
    first = json.loads(records[0]["Data"])
    assert first["event_time"].startswith("2025-03-01 11:59:")
    assert records[0]["PartitionKey"] == f"{first['marketplace']}-{first['platform']}"


def test_handle_uses_the_injected_clock_and_seed_when_the_event_has_no_time(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the handler module and a stream
    monkeypatch.setenv("STREAM_NAME", "events")
    with mock_aws():
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="events", ShardCount=1)
        sys.modules.pop("metrics_generator.handler", None)
        handler = importlib.import_module("metrics_generator.handler")
        config = GeneratorConfig("events", 10, "de", 4.0)

        # When invoked by hand (no "time") with a fixed clock
        result = handler.handle(
            {},
            config=config,
            kinesis=kinesis,
            rng=random.Random(1),
            clock=lambda: datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
        )

    # Then the window ends at the clock's time
    assert result == {"records": 10, "window_end": "2025-03-01T08:30:00+00:00"}


def test_a_run_covers_its_schedule_window(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a generator scheduled every 5 minutes
    monkeypatch.setenv("STREAM_NAME", "events")
    monkeypatch.setenv("RECORDS_PER_INVOCATION", "100")
    monkeypatch.setenv("WINDOW_MINUTES", "5")
    with mock_aws():
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="events", ShardCount=1)
        sys.modules.pop("metrics_generator.handler", None)
        handler = importlib.import_module("metrics_generator.handler")

        # When it runs at 12:05
        handler.handle({"time": "2025-03-01T12:05:00Z"}, config=handler.CONFIG, kinesis=kinesis, rng=random.Random(1))

        shard_id = kinesis.describe_stream(StreamName="events")["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName="events", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
        records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    # Then its 100 events span the five minutes that end at 12:05, not just the last one
    times = sorted(json.loads(record["Data"])["event_time"] for record in records)
    assert len(times) == 100
    assert "2025-03-01 12:00:00" <= times[0] < "2025-03-01 12:01:00"
    assert times[-1] < "2025-03-01 12:05:00"


def test_window_minutes_must_be_a_schedule_rate() -> None:
    with pytest.raises(ConfigError, match="WINDOW_MINUTES"):
        load_config({"STREAM_NAME": "s", "WINDOW_MINUTES": "0"})
