"""The fan-out handler against moto S3/SNS/CloudWatch: resolve the interval, score 2 partitions, form the groups."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from anomaly_detector.config import ConfigError
from anomaly_detector.partitions import partition_state_key, split_totals
from anomaly_detector.scoring import DetectorState, score_interval
from moto import mock_aws

BUCKET = "data-bucket"
START = datetime(2025, 3, 1, 19, 15, tzinfo=UTC)
STATE_KEY = "metrics/detector-state/history.json"
ENV = {
    "DATA_BUCKET": BUCKET,
    "INTERVALS_PREFIX": "metrics/intervals/",
    "ANOMALIES_PREFIX": "metrics/anomalies/",
    "STATE_KEY": STATE_KEY,
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:anomalies",
    "METRIC_NAMESPACE": "Streaming/Anomalies",
    "DIMENSIONS": "marketplace",
    "TIMESTAMP_COLUMN": "event_time",
    "MEASURES": "views:sum",
    "FREQUENCY_MINUTES": "5",
    "ANOMALY_THRESHOLD": "48",
    "HISTORY_LENGTH": "288",
    "FEEDBACK_PREFIX": "metrics/feedback/",
    "AGGREGATES_PREFIX": "metrics/detector-aggregates/",
    "PARTITIONS": "2",
    "SCORES_PREFIX": "metrics/detector-scores/",
}
MARKETPLACES = ("us", "de", "jp")


def _import_handler(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("anomaly_detector.fanout_handler", None)
    return importlib.import_module("anomaly_detector.fanout_handler")


def _bucket_with_partition_states_and_a_spike_in_de() -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    boto3.client("sns").create_topic(Name="anomalies")
    states = [DetectorState(5, metric_set="marketplace|views:sum") for _ in range(2)]
    for i in range(288, 0, -1):
        totals = {f"views|marketplace={m}": 1000.0 + (i % 7) * 10 for m in MARKETPLACES}
        totals["views|marketplace=*"] = sum(totals.values())
        for state, part in zip(states, split_totals(totals, 2), strict=True):
            score_interval(state, START - i * timedelta(minutes=5), part, 48.0, 288, has_data=True)
    for partition, state in enumerate(states):
        s3.put_object(Bucket=BUCKET, Key=partition_state_key(STATE_KEY, partition, 2), Body=state.to_json().encode())
    rows = "".join(f"{m},2025-03-01 19:15:00,{4000 if m == 'de' else 1030}\n" for m in MARKETPLACES)
    s3.put_object(
        Bucket=BUCKET,
        Key="metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1915/batch_id=000000000001/part-00000.csv",
        Body=("marketplace,event_time,views\n" + rows).encode(),
    )
    return s3


def test_the_state_machine_steps_score_each_partition_and_form_one_group(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    with mock_aws():
        s3 = _bucket_with_partition_states_and_a_spike_in_de()
        handler = _import_handler(monkeypatch, ENV)

        # When the 19:22 schedule's event starts the execution: the interval and the Map's items
        resolved = handler.lambda_handler({"time": "2025-03-01T19:22:00Z", "source": "aws.events"}, lambda_context)
        assert resolved == {
            "interval_start": "2025-03-01T19:15:00Z",
            "rerun": False,
            "partitions": 2,
            "partition_list": [0, 1],
        }
        # And each partition is scored, then the groups are formed
        common = {"interval_start": resolved["interval_start"], "partitions": 2, "rerun": False}
        parts = [handler.lambda_handler({**common, "partition": p}, lambda_context) for p in (0, 1)]
        summary = handler.lambda_handler({**common, "form_groups": True}, lambda_context)

        # Then both partitions scored their own series, and one group rooted in de was written and alerted
        assert {part["mode"] for part in parts} == {"live"}
        assert sum(int(str(part["series_scored"])) for part in parts) == 4 == summary["series_scored"]
        assert (summary["mode"], summary["groups"], summary["alerts_sent"]) == ("live", 1, 1)
        groups_key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/groups.jsonl"
        group = json.loads(s3.get_object(Bucket=BUCKET, Key=groups_key)["Body"].read())
        assert group["contributors"][0]["dimensions"] == {"marketplace": "de"} and group["alerted"] is True
        # And the verdict files, the partition states, the groups state and the interval's aggregate are in S3
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="metrics/")["Contents"]}
        scores = "metrics/detector-scores/intvl_date=2025-03-01/intvl_hhmm=1915/"
        assert {f"{scores}part-0-of-2.json", f"{scores}part-1-of-2.json"} <= keys
        assert "metrics/detector-state/history.groups.json" in keys
        assert "metrics/detector-aggregates/intvl_date=2025-03-01/intvl_hhmm=1915/totals.json" in keys
        groups_state = json.loads(
            s3.get_object(Bucket=BUCKET, Key="metrics/detector-state/history.groups.json")["Body"].read()
        )
        assert groups_state["last_interval_start"] == "2025-03-01T19:15:00Z"
        assert groups_state["open_groups"]["views|high"]["alerted"] is True
        for partition in (0, 1):
            saved = json.loads(
                s3.get_object(Bucket=BUCKET, Key=partition_state_key(STATE_KEY, partition, 2))["Body"].read()
            )
            assert saved["last_interval_start"] == "2025-03-01T19:15:00Z"
        metric_names = {
            m["MetricName"]
            for m in boto3.client("cloudwatch").list_metrics(Namespace=ENV["METRIC_NAMESPACE"])["Metrics"]
        }
        assert {"SeriesScored", "AnomalyGroups", "AlertsSent", "EmptyInterval", "MeasureTotal"} <= metric_names

        # And a repeated delivery of the whole execution does nothing
        again = [handler.lambda_handler({**common, "partition": p}, lambda_context)["mode"] for p in (0, 1)]
        assert again == ["already processed"] * 2
        assert handler.lambda_handler({**common, "form_groups": True}, lambda_context)["mode"] == "already processed"


def test_a_hand_started_execution_names_its_interval_and_is_a_rerun(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    with mock_aws():
        handler = _import_handler(monkeypatch, ENV)
        resolved = handler.lambda_handler({"interval_start": "2025-03-01T10:00:00Z"}, lambda_context)
    assert (resolved["interval_start"], resolved["rerun"]) == ("2025-03-01T10:00:00Z", True)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"partition": 0, "partitions": 3, "interval_start": "2025-03-01T10:00:00Z"}, "differs from the function's"),
        ({"partition": 2, "partitions": 2, "interval_start": "2025-03-01T10:00:00Z"}, r"partition must be 0\.\.1"),
        ({"partition": "0", "partitions": 2, "interval_start": "2025-03-01T10:00:00Z"}, "partition must be an integer"),
        ({"form_groups": True, "partitions": 2}, "interval_start is required"),
    ],
)
def test_an_event_that_does_not_fit_is_refused_naming_the_field(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, event: dict[str, Any], message: str
) -> None:
    with mock_aws():
        handler = _import_handler(monkeypatch, ENV)
        with pytest.raises(handler.EventError, match=message):
            handler.lambda_handler(event, lambda_context)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"PARTITIONS": "1"}, "needs PARTITIONS > 1"),
        ({"PARTITIONS": "65"}, r"PARTITIONS must be 1\.\.64"),
        ({"SCORES_PREFIX": ""}, "SCORES_PREFIX is required when PARTITIONS > 1"),
    ],
)
def test_the_environment_is_checked_at_cold_start(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, override: dict[str, str], message: str
) -> None:
    with mock_aws(), pytest.raises(ConfigError, match=message):
        _import_handler(monkeypatch, {**ENV, **override})
