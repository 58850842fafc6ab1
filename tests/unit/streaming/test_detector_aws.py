"""Detector against moto: the S3 store's layout, the SNS/CloudWatch adapters, the handler, the env."""

from __future__ import annotations

import gzip
import importlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from anomaly_detector.config import ConfigError, load_config
from anomaly_detector.logic import CloudWatchMetricsSink, SnsAlertPublisher
from anomaly_detector.stores import S3IntervalStore
from moto import mock_aws

BUCKET = "data-bucket"
START = datetime(2025, 3, 1, 19, 15, tzinfo=UTC)
ENV = {
    "DATA_BUCKET": BUCKET,
    "INTERVALS_PREFIX": "metrics/intervals/",
    "ANOMALIES_PREFIX": "metrics/anomalies/",
    "STATE_KEY": "metrics/detector-state/history.json",
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:anomalies",
    "METRIC_NAMESPACE": "Streaming/Anomalies",
    "DIMENSION_COLUMN": "marketplace",
    "TIMESTAMP_COLUMN": "event_time",
    "MEASURE_COLUMN": "views",
    "FREQUENCY_MINUTES": "5",
    "ANOMALY_THRESHOLD": "48",
    "HISTORY_LENGTH": "288",
}
CSV = "marketplace,event_time,views\nus,2025-03-01 19:15:00,100\n"


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def make_store(s3: Any) -> S3IntervalStore:
    return S3IntervalStore(s3, BUCKET, ENV["INTERVALS_PREFIX"], ENV["ANOMALIES_PREFIX"], ENV["STATE_KEY"])


def test_s3_store_reads_only_the_interval_csv_parts(s3: Any) -> None:
    # Given CSV parts (one gzipped), a success marker and a neighbouring interval
    partition = "metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1915/"
    s3.put_object(Bucket=BUCKET, Key=partition + "part-00000.csv", Body=CSV.encode())
    s3.put_object(Bucket=BUCKET, Key=partition + "part-00001.csv.gz", Body=gzip.compress(CSV.encode()))
    s3.put_object(Bucket=BUCKET, Key=partition + "_SUCCESS", Body=b"")
    s3.put_object(
        Bucket=BUCKET, Key="metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1920/part-0.csv", Body=b"other"
    )

    # When the interval is read
    texts = make_store(s3).read_interval_csvs(START)

    # Then both parts of that partition, decoded, and nothing else come back
    assert texts == [CSV, CSV]
    assert make_store(s3).read_interval_csvs(START - timedelta(minutes=5)) == []


def test_s3_store_state_and_anomalies_layout(s3: Any) -> None:
    store = make_store(s3)
    # Given no state yet
    assert store.read_state() is None

    # When state and anomalies are written
    store.write_state('{"version": 1}')
    location = store.write_anomalies(START, '{"a": 1}\n')

    # Then they sit at the configured keys
    assert store.read_state() == '{"version": 1}'
    key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/anomalies.jsonl"
    assert location == f"s3://{BUCKET}/{key}"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b'{"a": 1}\n'


def test_sns_and_cloudwatch_adapters_make_one_call_each(aws_env: None) -> None:
    with mock_aws():
        # Given a topic with a queue subscribed, and CloudWatch
        sns, sqs, cloudwatch = boto3.client("sns"), boto3.client("sqs"), boto3.client("cloudwatch")
        topic_arn = sns.create_topic(Name="anomalies")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

        # When an alert and metrics are sent
        SnsAlertPublisher(sns, topic_arn).publish("subject", "body")
        CloudWatchMetricsSink(cloudwatch, "Streaming/Anomalies").put_metrics(
            {"AnomaliesDetected": 2, "MaxSeverity": 87.5}, START
        )

        # Then the queue got the message and the namespace holds both metrics
        [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
        assert json.loads(message["Body"])["Subject"] == "subject"
        names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Streaming/Anomalies")["Metrics"]}
        assert names == {"AnomaliesDetected", "MaxSeverity"}


def test_environment_is_parsed_into_settings() -> None:
    config = load_config({**ENV, "INTERVALS_PREFIX": "metrics/intervals"})
    assert config.intervals_prefix == "metrics/intervals/"  # a missing trailing slash is added
    assert config.settings.frequency_minutes == 5
    assert config.settings.anomaly_threshold == 48.0
    assert config.settings.history_length == 288


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATA_BUCKET", ""),
        ("FREQUENCY_MINUTES", "15"),
        ("FREQUENCY_MINUTES", "five"),
        ("ANOMALY_THRESHOLD", "0"),
        ("ANOMALY_THRESHOLD", "101"),
        ("ANOMALY_THRESHOLD", "inf"),
        ("HISTORY_LENGTH", "4"),
        ("TOPIC_ARN", "anomalies"),
        ("MEASURE_COLUMN", " "),
    ],
)
def test_bad_environment_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({**ENV, name: value})


def test_handler_detects_the_interval_closed_by_the_event_time(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        # Given a bucket with a day of state, the topic, and a x4 spike in the 19:15 interval. The state is the
        # previous detector's (version 1: raw totals per value), which the detector migrates on reading.
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        boto3.client("sns").create_topic(Name="anomalies")
        version_1_state = {
            "version": 1,
            "frequency_minutes": 5,
            "history_length": 288,
            "last_interval_start": "2025-03-01T19:10:00Z",
            "series": {"us": [1000.0 + (i % 7) * 10 for i in range(288, 0, -1)]},
        }
        s3.put_object(Bucket=BUCKET, Key=ENV["STATE_KEY"], Body=json.dumps(version_1_state).encode())
        s3.put_object(
            Bucket=BUCKET,
            Key="metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1915/part-00000.csv",
            Body=b"marketplace,event_time,views\nus,2025-03-01 19:15:00,4000\n",
        )
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")

        # When the 19:22 schedule fires
        summary = handler.lambda_handler({"time": "2025-03-01T19:22:00Z"}, lambda_context)

        # Then the 19:15-19:20 interval was scored, flagged, written, and the state moved on
        assert summary["interval_start"] == "2025-03-01T19:15:00Z"
        assert summary["anomalies"] == 1
        anomalies_key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/anomalies.jsonl"
        assert json.loads(s3.get_object(Bucket=BUCKET, Key=anomalies_key)["Body"].read())["value"] == 4000
        state = json.loads(s3.get_object(Bucket=BUCKET, Key=ENV["STATE_KEY"])["Body"].read())
        assert state["last_interval_start"] == "2025-03-01T19:15:00Z"
        assert state["version"] == 2 and set(state["series"]) == {"us"}
        metric_names = {
            m["MetricName"]
            for m in boto3.client("cloudwatch").list_metrics(Namespace=ENV["METRIC_NAMESPACE"])["Metrics"]
        }
        assert {"DimensionsScored", "AnomaliesDetected", "MaxSeverity", "EmptyInterval"} <= metric_names


def test_interval_can_be_chosen_explicitly_for_a_rerun(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")
    assert handler.interval_for_event({"interval_start": "2025-03-01T10:00:00Z"}, 5) == datetime(
        2025, 3, 1, 10, 0, tzinfo=UTC
    )
    assert handler.interval_for_event({}, 10, clock=datetime(2025, 3, 1, 10, 4, tzinfo=UTC)) == datetime(
        2025, 3, 1, 9, 50, tzinfo=UTC
    )
