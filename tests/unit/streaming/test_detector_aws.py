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
from anomaly_detector.alerts import SnsAlertTarget
from anomaly_detector.config import ConfigError, load_config
from anomaly_detector.feedback import FeedbackLabel
from anomaly_detector.logic import CloudWatchMetricsSink
from anomaly_detector.scoring import DetectorState, score_interval
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
    "DIMENSIONS": "marketplace",
    "TIMESTAMP_COLUMN": "event_time",
    "MEASURES": "views:sum",
    "FREQUENCY_MINUTES": "5",
    "ANOMALY_THRESHOLD": "48",
    "HISTORY_LENGTH": "288",
    "FEEDBACK_PREFIX": "metrics/feedback/",
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
    location = store.write_groups(START, '{"a": 1}\n')

    # Then they sit at the configured keys
    assert store.read_state() == '{"version": 1}'
    key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/groups.jsonl"
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
        SnsAlertTarget(sns, topic_arn).send("subject", "body", {})
        CloudWatchMetricsSink(cloudwatch, "Streaming/Anomalies").put_metrics(
            {"AnomalyGroups": 2, "MaxGroupSeverity": 87.5}, START, by_measure={"views": {"MeasureTotal": 10.0}}
        )

        # Then the queue got the message and the namespace holds the metrics, per measure with its dimension
        [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
        assert json.loads(message["Body"])["Subject"] == "subject"
        listed = cloudwatch.list_metrics(Namespace="Streaming/Anomalies")["Metrics"]
        assert {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", []))) for m in listed} == {
            ("AnomalyGroups", ()),
            ("MaxGroupSeverity", ()),
            ("MeasureTotal", (("Measure", "views"),)),
        }


def test_the_cloudwatch_sink_splits_at_1000_metrics_per_call() -> None:
    calls: list[int] = []

    class Recorder:
        def put_metric_data(self, Namespace: str, MetricData: list[Any]) -> None:  # noqa: N803 - boto3's names
            calls.append(len(MetricData))

    values = {f"M{i}": float(i) for i in range(1500)}
    CloudWatchMetricsSink(Recorder(), "ns").put_metrics(values, START, by_measure={"views": {"MeasureTotal": 1.0}})  # type: ignore[arg-type]
    assert calls == [1000, 501]


def test_environment_is_parsed_into_settings() -> None:
    config = load_config({**ENV, "INTERVALS_PREFIX": "metrics/intervals"})
    assert config.intervals_prefix == "metrics/intervals/"  # a missing trailing slash is added
    assert config.settings.frequency_minutes == 5
    assert config.settings.anomaly_threshold == 48.0
    assert config.settings.history_length == 288
    assert config.settings.alert_min_severity == 70.0  # until streaming.alert_min_severity is deployed
    assert load_config({**ENV, "ALERT_MIN_SEVERITY": "80"}).settings.alert_min_severity == 80.0
    two = load_config({**ENV, "DIMENSIONS": "platform,marketplace", "MEASURES": "views:sum,orders:count"})
    assert two.settings.metric_set.signature == "platform,marketplace|views:sum,orders:count"


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
        ("MEASURES", " "),
        ("MEASURES", "views:avg"),
        ("DIMENSIONS", "platform,,marketplace"),
        ("ALERT_MIN_SEVERITY", "0"),
        ("ALERT_LAMBDA_ARN", "on-call"),
        ("FEEDBACK_PREFIX", ""),
    ],
)
def test_bad_environment_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({**ENV, name: value})


def _bucket_with_a_day_of_state_and_a_spike_at_1915() -> Any:
    """Given a bucket with a day of state, the topic, and a x4 spike in the 19:15 interval."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    boto3.client("sns").create_topic(Name="anomalies")
    state = DetectorState(5, metric_set="marketplace|views:sum")
    for i in range(288, 0, -1):
        views = 1000.0 + (i % 7) * 10
        totals = {"views|marketplace=us": views, "views|marketplace=*": views}
        score_interval(state, START - i * timedelta(minutes=5), totals, 48.0, 288)
    s3.put_object(Bucket=BUCKET, Key=ENV["STATE_KEY"], Body=state.to_json().encode())
    s3.put_object(
        Bucket=BUCKET,
        Key="metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1915/part-00000.csv",
        Body=b"marketplace,event_time,views\nus,2025-03-01 19:15:00,4000\n",
    )
    return s3


def test_handler_detects_the_interval_closed_by_the_event_time(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = _bucket_with_a_day_of_state_and_a_spike_at_1915()
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")

        # When the 19:22 schedule fires
        summary = handler.lambda_handler({"time": "2025-03-01T19:22:00Z"}, lambda_context)

        # Then the 19:15-19:20 interval was scored, flagged, written, and the state moved on
        assert summary["interval_start"] == "2025-03-01T19:15:00Z"
        assert summary["groups"] == 1 and summary["alerts_sent"] == 1
        groups_key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/groups.jsonl"
        group = json.loads(s3.get_object(Bucket=BUCKET, Key=groups_key)["Body"].read())
        assert group["contributors"][0]["observed"] == 4000 and group["alerted"] is True
        saved = json.loads(s3.get_object(Bucket=BUCKET, Key=ENV["STATE_KEY"])["Body"].read())
        assert saved["last_interval_start"] == "2025-03-01T19:15:00Z"
        assert saved["version"] == 3 and set(saved["series"]) == {"views|marketplace=us", "views|marketplace=*"}
        assert saved["open_groups"]["views|high"] == {
            "group_id": group["group_id"],
            "opened_at": group["opened_at"],
            "alerted": True,
        }
        metric_names = {
            m["MetricName"]
            for m in boto3.client("cloudwatch").list_metrics(Namespace=ENV["METRIC_NAMESPACE"])["Metrics"]
        }
        assert {"SeriesScored", "AnomalyGroups", "NewAnomalyGroups", "MaxGroupSeverity", "AlertsSent"} <= metric_names
        assert {"EmptyInterval", "RowsRead", "SkippedRows", "SeriesWarmingUp", "MeasureTotal"} <= metric_names


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


def test_a_not_anomaly_label_keeps_the_same_pattern_quiet(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        # Given the spike, and a person's "not an anomaly" on an earlier group of the same pattern and size
        s3 = _bucket_with_a_day_of_state_and_a_spike_at_1915()
        earlier = FeedbackLabel(
            group_id="views-high-20250228T1915Z",
            verdict="not_anomaly",
            measure="views",
            direction="high",
            level="total",
            series=("views|marketplace=*",),
            severity=100.0,
            observed=4100.0,
            expected=1030.0,
            recorded_at="2025-03-01T08:00:00Z",
        )
        s3.put_object(Bucket=BUCKET, Key=f"{ENV['FEEDBACK_PREFIX']}{earlier.group_id}.json", Body=earlier.to_json())
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")

        # When the 19:22 schedule fires
        summary = handler.lambda_handler({"time": "2025-03-01T19:22:00Z"}, lambda_context)

        # Then the group is recorded with the label in force, and nobody is alerted
        assert summary["groups"] == 1 and summary["alerts_sent"] == 0
        groups_key = "metrics/anomalies/intvl_date=2025-03-01/intvl_hhmm=1915/groups.jsonl"
        group = json.loads(s3.get_object(Bucket=BUCKET, Key=groups_key)["Body"].read())
        assert (group["level"], group["feedback"], group["alerted"]) == ("total", "not_anomaly", False)


def test_the_alert_function_is_a_second_target_when_configured(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:on-call"
    for name, value in {**ENV, "ALERT_LAMBDA_ARN": function_arn}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")
    assert [type(target).__name__ for target in handler.TARGETS] == ["SnsAlertTarget", "LambdaAlertTarget"]
    assert handler.TARGETS[1].function_arn == function_arn
