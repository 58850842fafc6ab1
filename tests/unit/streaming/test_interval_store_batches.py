"""The detector's stores read the streaming job's per-batch folders once each, and skip a writer's work folders.

The Glue job writes ``intvl_date=.../intvl_hhmm=.../batch_id=NNNNNNNNNNNN/part-*.csv``; Spark's committers stage
files under ``_temporary`` and ``.spark-staging-*`` folders, which must never be counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from anomaly_detector.stores import LocalDirStore, S3IntervalStore, is_interval_data
from moto import mock_aws

BUCKET = "data-bucket"
START = datetime(2025, 3, 1, 19, 15, tzinfo=UTC)
PARTITION = "metrics/intervals/intvl_date=2025-03-01/intvl_hhmm=1915/"
FILES = {
    "batch_id=000000000001/part-00000-a.c000.csv": "marketplace,event_time,views\nus,2025-03-01 19:15:00,1\n",
    "batch_id=000000000002/part-00000-b.c000.csv": "marketplace,event_time,views\nus,2025-03-01 19:16:00,2\n",
    "part-00000-flat.csv": "marketplace,event_time,views\nus,2025-03-01 19:17:00,4\n",
    # a writer's work in progress and markers: never data
    "_temporary/0/part-00000-c.c000.csv": "marketplace,event_time,views\nus,x,100\n",
    ".spark-staging-123/batch_id=000000000003/part-00000-d.c000.csv": "marketplace,event_time,views\nus,x,100\n",
    "batch_id=000000000002/_SUCCESS": "",
    "batch_id=000000000002/.part-00000-b.c000.csv.crc": "crc",
}
EXPECTED = sorted(text for key, text in FILES.items() if key.startswith(("batch_id=", "part-")) and "views" in text)


@pytest.mark.parametrize(
    ("relative_key", "is_data"),
    [
        ("part-0.csv", True),
        ("batch_id=000000000001/part-0.csv", True),
        ("batch_id=000000000001/part-0.csv.gz", True),
        ("_temporary/0/part-0.csv", False),
        (".spark-staging-1/batch_id=1/part-0.csv", False),
        ("batch_id=1/_SUCCESS", False),
        ("batch_id=1/", False),
    ],
)
def test_what_counts_as_interval_data(relative_key: str, is_data: bool) -> None:
    assert is_interval_data(relative_key) is is_data


def test_the_local_store_reads_every_batch_folder_once(tmp_path: Path) -> None:
    for key, text in FILES.items():
        path = tmp_path / PARTITION / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    store = LocalDirStore(tmp_path, "metrics/intervals/", "metrics/anomalies/", "state.json")
    assert sorted(store.read_interval_csvs(START)) == EXPECTED


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_the_s3_store_reads_the_same_files_as_the_local_store(s3: Any) -> None:
    for key, text in FILES.items():
        s3.put_object(Bucket=BUCKET, Key=PARTITION + key, Body=text.encode())
    s3.put_object(Bucket=BUCKET, Key=PARTITION + "batch_id=000000000004/", Body=b"")  # a directory marker
    store = S3IntervalStore(s3, BUCKET, "metrics/intervals/", "metrics/anomalies/", "state.json")
    assert sorted(store.read_interval_csvs(START)) == EXPECTED
