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
from metrics_generator.records import InjectedAnomaly
from moto import mock_aws

REVENUE_IN_WEB_DE = json.dumps(
    {"measure": "revenue", "dimensions": {"platform": "web", "marketplace": "de"}, "factor": 0.2}
)
UNKNOWN_MARKETPLACE = '{"measure": "views", "dimensions": {"marketplace": "fr"}, "factor": 2}'
UNKNOWN_DIMENSION = '{"measure": "views", "dimensions": {"device": "tv"}, "factor": 2}'


def test_defaults_apply_when_only_the_stream_is_given() -> None:
    assert load_config({"STREAM_NAME": "events"}) == GeneratorConfig("events", 500, None, 1)
    assert load_config({"STREAM_NAME": "events", "ANOMALY_TARGET": ""}).anomaly_target is None


def test_full_environment_is_parsed() -> None:
    config = load_config({"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "50", "ANOMALY_TARGET": REVENUE_IN_WEB_DE})
    assert config == GeneratorConfig("s", 50, InjectedAnomaly("revenue", {"platform": "web", "marketplace": "de"}, 0.2))


def test_a_target_may_name_a_subset_of_the_dimensions() -> None:
    target = json.dumps({"measure": "views", "dimensions": {"platform": "android"}, "factor": 3})
    config = load_config({"STREAM_NAME": "s", "ANOMALY_TARGET": target})
    assert config.anomaly_target == InjectedAnomaly("views", {"platform": "android"}, 3.0)


@pytest.mark.parametrize(
    ("env", "bad_variable"),
    [
        ({}, "STREAM_NAME"),
        ({"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "many"}, "RECORDS_PER_INVOCATION"),
        ({"STREAM_NAME": "s", "RECORDS_PER_INVOCATION": "0"}, "RECORDS_PER_INVOCATION"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": "de"}, "ANOMALY_TARGET must be empty or a JSON object"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "views"}'}, "ANOMALY_TARGET must be"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "views", "factor": true}'}, "ANOMALY_TARGET must be"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "clicks", "factor": 2}'}, "ANOMALY_TARGET: .*measure"),
        (
            {
                "STREAM_NAME": "s",
                "ANOMALY_TARGET": '{"measure": "views", "dimensions": {"marketplace": "fr"}, "factor": 2}',
            },
            "ANOMALY_TARGET: .*marketplace",
        ),
        (
            {"STREAM_NAME": "s", "ANOMALY_TARGET": UNKNOWN_DIMENSION},
            "ANOMALY_TARGET: .*dimension",
        ),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "views", "factor": -1}'}, "ANOMALY_TARGET factor"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "views", "factor": 1}'}, "ANOMALY_TARGET factor"),
        ({"STREAM_NAME": "s", "ANOMALY_TARGET": '{"measure": "views", "factor": NaN}'}, "ANOMALY_TARGET factor"),
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
        config = GeneratorConfig("events", 10, InjectedAnomaly("views", {"marketplace": "de"}, 4.0))

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


def test_the_configured_target_changes_only_its_measure_in_its_combination(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_NAME", "plain")
    # Given two generator configs with the same seed, one with a revenue drop in web/de
    target = load_config({"STREAM_NAME": "targeted", "ANOMALY_TARGET": REVENUE_IN_WEB_DE})
    plain = GeneratorConfig("plain", target.records_per_invocation)
    with mock_aws():
        kinesis = boto3.client("kinesis")
        sys.modules.pop("metrics_generator.handler", None)
        handler = importlib.import_module("metrics_generator.handler")
        delivered: dict[str, list[dict[str, Any]]] = {}
        for config in (plain, target):
            kinesis.create_stream(StreamName=config.stream_name, ShardCount=1)
            # When each runs once at the same time
            handler.handle({"time": "2025-03-01T12:00:00Z"}, config=config, kinesis=kinesis, rng=random.Random(4))
            shard_id = kinesis.describe_stream(StreamName=config.stream_name)["StreamDescription"]["Shards"][0]
            iterator = kinesis.get_shard_iterator(
                StreamName=config.stream_name, ShardId=shard_id["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )
            records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
            delivered[config.stream_name] = sorted(
                (json.loads(record["Data"]) for record in records), key=lambda r: (r["event_time"], r["platform"])
            )

    # Then web/de revenue is a fifth, its views and every other record are unchanged
    pairs = list(zip(delivered["plain"], delivered["targeted"], strict=True))
    web_de = [(a, b) for a, b in pairs if (a["platform"], a["marketplace"]) == ("web", "de")]
    assert web_de
    assert all(b["revenue"] == pytest.approx(a["revenue"] * 0.2, abs=0.01) for a, b in web_de)
    assert all(a["views"] == b["views"] for a, b in pairs)
    assert all(a == b for a, b in pairs if (a["platform"], a["marketplace"]) != ("web", "de"))
