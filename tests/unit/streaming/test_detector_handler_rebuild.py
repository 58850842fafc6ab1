"""The Lambda handler's history rebuild: the deadline comes from the invocation's remaining time, the
aggregates from AGGREGATES_PREFIX."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import boto3
import pytest
from moto import mock_aws

BUCKET = "data-bucket"
ENV = {
    "DATA_BUCKET": BUCKET,
    "INTERVALS_PREFIX": "metrics/intervals/",
    "ANOMALIES_PREFIX": "metrics/anomalies/",
    "AGGREGATES_PREFIX": "metrics/detector-aggregates",
    "STATE_KEY": "metrics/detector-state/history.json",
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:anomalies",
    "METRIC_NAMESPACE": "Streaming/Anomalies",
    "DIMENSIONS": "marketplace",
    "TIMESTAMP_COLUMN": "event_time",
    "MEASURES": "views:sum",
    "FEEDBACK_PREFIX": "metrics/feedback/",
    "FREQUENCY_MINUTES": "5",
    "ANOMALY_THRESHOLD": "48",
    "HISTORY_LENGTH": "12",
}


@pytest.mark.parametrize(("remaining_millis", "mode"), [(60_000, "live"), (29_000, "rebuilding")])
def test_the_rebuild_gets_the_invocations_remaining_time_minus_the_margin(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, remaining_millis: int, mode: str
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    lambda_context.remaining_millis = remaining_millis
    with mock_aws():
        # Given 12 stored intervals before 19:15 and no state
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        boto3.client("sns").create_topic(Name="anomalies")
        for minute in range(14 * 60 + 15, 19 * 60 + 20, 5):
            folder = f"metrics/intervals/intvl_date=2025-03-01/intvl_hhmm={minute // 60:02d}{minute % 60:02d}/"
            s3.put_object(
                Bucket=BUCKET,
                Key=folder + "batch_id=000000000001/part-00000.csv",
                Body=b"marketplace,event_time,views\nus,2025-03-01 19:15:00,100\n",
            )
        sys.modules.pop("anomaly_detector.handler", None)
        handler = importlib.import_module("anomaly_detector.handler")
        # When the 19:22 schedule fires with 60 s left (30 s for the rebuild), or 29 s (none)
        summary = handler.lambda_handler({"time": "2025-03-01T19:22:00Z"}, lambda_context)
        # Then it judges after a full rebuild, or saves nothing and says it is rebuilding
        assert summary["mode"] == mode
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="metrics/detector-aggregates/").get("KeyCount", 0)
        if mode == "live":
            assert summary["caught_up_intervals"] == 12 and listed == 13  # 12 learnt + the judged one
            state = json.loads(s3.get_object(Bucket=BUCKET, Key=ENV["STATE_KEY"])["Body"].read())
            assert state["last_interval_start"] == "2025-03-01T19:15:00Z"
        else:
            assert summary["intervals_left"] == 12 and listed == 0
            assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="metrics/detector-state/")
