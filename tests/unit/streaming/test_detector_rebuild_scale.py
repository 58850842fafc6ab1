"""The history rebuild at prod scale against moto: 1,008 stored intervals of 10 minutes, 10 micro-batch CSVs each.

Counts the S3 requests (a botocore ``before-call`` hook) of a rebuild from CSVs, split over runs by a time
budget, and of a rebuild from the per-interval aggregates those runs left, in one run; the two end in the same
state. moto answers in about a millisecond, S3 in tens of them: the counts carry over to AWS, the times do
not (see the README's "Scale" section for the prod estimate).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.history import Deadline, S3IntervalSource
from anomaly_detector.logic import IntervalReport, detect_interval
from anomaly_detector.stores import S3IntervalStore, partition_path
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

pytestmark = pytest.mark.slow

BUCKET = "scale-bucket"
INTERVALS = "metrics/intervals/"
AGGREGATES = "metrics/detector-aggregates/"
STATE_KEY = "metrics/detector-state/history.json"
HISTORY = 1008  # cdk.json prod: streaming.history_length
BATCHES = 10  # micro-batches per 10-minute interval in prod
LIVE_RUNS = 12  # scheduled runs available to finish the rebuild
BUDGET_SECONDS = 3.0  # per run (on AWS: the remaining time minus the margin, 90 s of 120 s)
# A run stops starting reads at its deadline, then finishes the reads already running and saves the state.
OVERRUN_SECONDS = 2.0
SETTINGS = DetectorSettings(frequency_minutes=10, anomaly_threshold=47.6, history_length=HISTORY)
STEP = timedelta(minutes=10)
FIRST = datetime(2026, 6, 1, tzinfo=UTC)
MARKETPLACES = ("us", "de", "jp", "uk", "fr")


class RequestCounter:
    """Counts S3 API calls by operation. The lock: the history reader calls from several threads."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            calls, self.calls = self.calls, Counter()
        return calls


class Discard:
    def publish(self, subject: str, message: str) -> None:
        del subject, message

    def put_metrics(self, values: Any, timestamp: datetime) -> None:
        del values, timestamp


def _csv(start: datetime, batch: int) -> bytes:
    rows = [
        f"{m},{start + timedelta(seconds=batch * 60):%Y-%m-%d %H:%M:%S},{10 + (batch * 7 + i) % 5}"
        for i, m in enumerate(MARKETPLACES)
    ]
    return ("marketplace,event_time,views\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            # Seeded straight into moto's backend (10,000 puts through botocore would take most of the budget).
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            for index in range(HISTORY + LIVE_RUNS):
                start = FIRST + index * STEP
                folder = partition_path(INTERVALS, start)
                for batch in range(BATCHES):
                    batch_id = f"{index * BATCHES + batch:012d}"
                    backend.put_object(
                        BUCKET, f"{folder}batch_id={batch_id}/part-00000-{batch_id}.csv", _csv(start, batch)
                    )
            yield client


def _run(
    s3: Any, interval_start: datetime, settings: DetectorSettings, deadline: Deadline | None, state_key: str = STATE_KEY
) -> IntervalReport:
    return detect_interval(
        store=S3IntervalStore(s3, BUCKET, INTERVALS, "metrics/anomalies/", state_key),
        publisher=Discard(),
        metrics=Discard(),
        interval_start=interval_start,
        settings=settings,
        history=S3IntervalSource(s3, BUCKET, INTERVALS, AGGREGATES),
        deadline=deadline,
    )


def test_a_prod_scale_rebuild_finishes_over_runs_and_from_aggregates_in_one(s3: Any) -> None:
    counter = RequestCounter()
    s3.meta.events.register("before-call.s3", counter)
    live = [FIRST + (HISTORY + offset) * STEP for offset in range(LIVE_RUNS)]

    # Given no state and no aggregates: each scheduled run rebuilds from CSVs within its budget
    reports: list[IntervalReport] = []
    requests: list[Counter[str]] = []
    for interval_start in live:
        started = time.monotonic()
        report = _run(s3, interval_start, SETTINGS, Deadline.after(BUDGET_SECONDS))
        elapsed = time.monotonic() - started
        reports.append(report)
        requests.append(counter.take())
        print(
            f"run {len(reports)}: {report.mode}, learnt {report.caught_up_intervals}, left {report.intervals_left}, "
            f"{elapsed:.2f} s, {sum(requests[-1].values())} requests"
        )
        # Then each run stops within its budget (plus the reads already running and the state write)
        assert elapsed <= BUDGET_SECONDS + OVERRUN_SECONDS
        assert report.caught_up_intervals > 0
        if report.mode == "live":
            break
        assert report.mode == "rebuilding"
    # And the rebuild completes over several runs: every stored interval learnt once, then one judged
    runs = len(reports)
    assert reports[-1].mode == "live" and 1 < runs < LIVE_RUNS
    learnt = sum(r.caught_up_intervals for r in reports)
    assert learnt == HISTORY + runs - 1
    assert all(
        r.intervals_left == HISTORY + i - sum(x.caught_up_intervals for x in reports[: i + 1])
        for i, r in enumerate(reports)
    )
    total = sum(requests, Counter())
    read = learnt + 1  # the judged interval is read the same way
    # From CSVs, per interval: LIST + GET totals.json (absent) + 10 GET + PUT totals.json; per run: state GET/PUT
    assert total["ListObjectsV2"] == read
    assert total["GetObject"] == read * (1 + BATCHES) + runs
    assert total["PutObject"] == read + runs
    csv_requests = sum(total.values())
    print(f"from CSVs: {csv_requests} S3 requests over {runs} runs ({csv_requests / read:.1f} per interval)")

    # Given the state is lost again, with the aggregates those runs wrote
    interrupted = s3.get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read()
    s3.delete_object(Bucket=BUCKET, Key=STATE_KEY)
    counter.take()
    started = time.monotonic()
    # When the same intervals are rebuilt in one uninterrupted run (history long enough to start where they did)
    reference = _run(
        s3,
        live[runs - 1],
        dataclasses.replace(SETTINGS, history_length=HISTORY + runs - 1),
        None,
        state_key="reference/history.json",
    )
    elapsed = time.monotonic() - started
    from_aggregates = counter.take()
    print(f"from aggregates: {sum(from_aggregates.values())} S3 requests in one run, {elapsed:.2f} s")
    # Then it reads one LIST and one totals.json per interval, no CSV, and writes only its state
    assert reference.mode == "live" and reference.caught_up_intervals == learnt
    assert from_aggregates == Counter({"ListObjectsV2": read, "GetObject": read + 1, "PutObject": 1})
    # And ends in exactly the state the interrupted rebuild reached
    assert s3.get_object(Bucket=BUCKET, Key="reference/history.json")["Body"].read() == interrupted
