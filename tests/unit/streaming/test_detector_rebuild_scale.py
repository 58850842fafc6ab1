"""The history rebuild at prod scale against moto: 1,008 stored intervals of 10 minutes, 10 micro-batch CSVs each.

Counts the S3 requests (a botocore ``before-call`` hook) of a rebuild from CSVs and from the per-interval
aggregates, split over scheduled runs by a time budget, and checks that it ends in the state of one
uninterrupted rebuild. Time is a clock driven by the requests (each one costs ``SECONDS_PER_REQUEST``: S3's
tens of milliseconds shared by the reader's 16 threads), not moto's wall time, which on a shared machine says
nothing about AWS; see the README's "Scale" section for the prod figures.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.history import (
    AGGREGATE_FILE_NAME,
    DataFile,
    Deadline,
    S3IntervalSource,
    StoredAggregate,
    aggregation_signature,
    files_fingerprint,
)
from anomaly_detector.logic import IntervalReport, detect_interval
from anomaly_detector.metric_set import aggregate_intervals
from anomaly_detector.scoring import DetectorState, IntervalAggregate, score_interval
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
SECONDS_PER_REQUEST = 0.025 / 16  # ~25 ms per small S3 request, 16 in flight
# Per run, so that the rebuild takes several runs here (on AWS: the remaining time minus the margin, 90 s).
BUDGET_SECONDS = 0.4
# A run stops starting reads at its deadline, then finishes the (at most 16) reads already running.
OVERRUN_SECONDS = 16 * (2 + BATCHES) * SECONDS_PER_REQUEST
SETTINGS = DetectorSettings(frequency_minutes=10, anomaly_threshold=47.6, history_length=HISTORY)
STEP = timedelta(minutes=10)
FIRST = datetime(2026, 6, 1, tzinfo=UTC)
MARKETPLACES = ("us", "de", "jp", "uk", "fr")


class RequestCounter:
    """Counts S3 API calls by operation. The lock: the history reader calls from several threads."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.total = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            self.total += 1

    def clock(self) -> float:
        """Simulated seconds: every request so far at S3's pace."""
        return self.total * SECONDS_PER_REQUEST

    def take(self) -> Counter[str]:
        with self._lock:
            calls, self.calls = self.calls, Counter()
        return calls


class Discard:
    def publish(self, subject: str, message: str) -> None:
        del subject, message

    def put_metrics(self, values: Any, timestamp: datetime, *, by_measure: Any = None) -> None:
        del values, timestamp


def _csv(start: datetime, batch: int) -> bytes:
    rows = [
        f"{m},{start + timedelta(seconds=batch * 60):%Y-%m-%d %H:%M:%S},{10 + (batch * 7 + i) % 5}"
        for i, m in enumerate(MARKETPLACES)
    ]
    return ("marketplace,event_time,views\n" + "\n".join(rows) + "\n").encode()


def _relative_key(index: int, batch: int) -> str:
    batch_id = f"{index * BATCHES + batch:012d}"
    return f"batch_id={batch_id}/part-00000-{batch_id}.csv"


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
                    backend.put_object(BUCKET, folder + _relative_key(index, batch), _csv(start, batch))
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


def _budgeted_runs(
    s3: Any, counter: RequestCounter, live: list[datetime], stop_after: int | None = None
) -> tuple[list[IntervalReport], Counter[str]]:
    """Scheduled runs, one per live interval, each with the budget, until one judges (or ``stop_after`` runs)."""
    reports: list[IntervalReport] = []
    total: Counter[str] = Counter()
    for interval_start in live[: stop_after or len(live)]:
        started = counter.clock()
        report = _run(s3, interval_start, SETTINGS, Deadline.after(BUDGET_SECONDS, counter.clock))
        elapsed = counter.clock() - started
        requests = counter.take()
        total += requests
        reports.append(report)
        print(
            f"run at {interval_start:%H:%M}: {report.mode}, learnt {report.caught_up_intervals}, "
            f"left {report.intervals_left}, {elapsed:.2f} s at S3's pace, {sum(requests.values())} S3 requests"
        )
        # Each run stops within its budget (plus the reads already running, and the state write)
        assert elapsed <= BUDGET_SECONDS + OVERRUN_SECONDS + 2 * SECONDS_PER_REQUEST
        assert report.caught_up_intervals > 0
        if report.mode == "live":
            break
        assert report.mode == "rebuilding"
    return reports, total


def _seed_aggregates(skip: set[datetime]) -> None:
    """The totals.json the live runs of the past week would have written (straight into moto: fast)."""
    signature = aggregation_signature(SETTINGS)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for index in range(HISTORY + LIVE_RUNS):
        start = FIRST + index * STEP
        if start in skip:
            continue
        files = []
        for batch in range(BATCHES):
            relative = _relative_key(index, batch)
            stored_key = backend.get_object(BUCKET, partition_path(INTERVALS, start) + relative)
            assert stored_key is not None
            files.append(DataFile(relative, f"{stored_key.etag}:{stored_key.size}"))
        stored = StoredAggregate(
            _totals(start), tuple(sorted(file.batch_id for file in files)), files_fingerprint(files), signature
        )
        backend.put_object(BUCKET, partition_path(AGGREGATES, start) + AGGREGATE_FILE_NAME, stored.to_json().encode())


def _totals(start: datetime) -> IntervalAggregate:
    return aggregate_intervals(
        [_csv(start, batch).decode() for batch in range(BATCHES)], SETTINGS.metric_set, timestamp_column="event_time"
    )


def _uninterrupted_state(last_learnt: datetime, judged: datetime) -> str:
    """The state one run with all the time it needs would reach: learn FIRST..last_learnt in order, judge one."""
    state = DetectorState(frequency_minutes=SETTINGS.frequency_minutes, metric_set=SETTINGS.metric_set.signature)
    start = FIRST
    while start <= last_learnt:
        state.learn_interval(start, _totals(start).totals, SETTINGS.history_length)
        start += STEP
    score_interval(state, judged, _totals(judged).totals, SETTINGS.anomaly_threshold, SETTINGS.history_length)
    return state.to_json()


def test_a_prod_scale_rebuild_continues_over_runs_and_ends_as_an_uninterrupted_one(s3: Any) -> None:
    counter = RequestCounter()
    s3.meta.events.register("before-call.s3", counter)
    live = [FIRST + (HISTORY + offset) * STEP for offset in range(LIVE_RUNS)]
    days = HISTORY // 144  # 7 days of 144 intervals, 1,440 CSVs each: 2 ListObjectsV2 pages per day

    # Given no state and no aggregates: two scheduled runs rebuild from the CSVs, each within its budget
    from_csvs, csv_requests = _budgeted_runs(s3, counter, live, stop_after=2)
    assert [r.mode for r in from_csvs] == ["rebuilding", "rebuilding"]
    read_from_csvs = sum(r.caught_up_intervals for r in from_csvs)
    # Per interval: GET totals.json (absent) + 10 CSV GETs + PUT totals.json; per run: the state's GET and PUT;
    # listings: 2 pages per day touched
    assert csv_requests["GetObject"] == read_from_csvs * (1 + BATCHES) + 2
    assert csv_requests["PutObject"] == read_from_csvs + 2
    assert csv_requests["ListObjectsV2"] <= 2 * (2 + read_from_csvs // 144 + 1)
    # so a whole rebuild from CSVs is 12 requests per interval plus 2 listings per day
    print(f"from CSVs: {2 + BATCHES} S3 requests per interval, {(2 + BATCHES) * HISTORY + 2 * days:,} for {HISTORY}")

    # And the other intervals have the aggregates the live runs wrote when they judged them
    learnt_so_far = {FIRST + index * STEP for index in range(read_from_csvs)}
    _seed_aggregates(skip=learnt_so_far)
    counter.take()
    # When the next scheduled runs continue the rebuild from the aggregates
    continued, aggregate_requests = _budgeted_runs(s3, counter, live[2:])
    reports = from_csvs + continued
    runs = len(reports)
    # Then it completes: every stored interval learnt once (in order), then the last run's interval judged
    assert reports[-1].mode == "live" and runs < LIVE_RUNS
    learnt = sum(r.caught_up_intervals for r in reports)
    assert learnt == HISTORY + runs - 1
    left = HISTORY
    for index, report in enumerate(reports):
        left += 1 if index else 0
        left -= report.caught_up_intervals
        assert report.intervals_left == left
    read = learnt - read_from_csvs + 1  # the judged interval is read the same way
    # From aggregates, per interval: one GET; per run: the state's GET and PUT; listings by day
    assert aggregate_requests["GetObject"] == read + len(continued)
    assert aggregate_requests["PutObject"] == len(continued)
    print(f"from aggregates: {sum(aggregate_requests.values()) / read:.2f} S3 requests per interval")
    # And its state is exactly that of one uninterrupted rebuild (chunks, CSVs or aggregates: the same learning)
    interrupted = s3.get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read().decode()
    assert interrupted == _uninterrupted_state(live[runs - 1] - STEP, live[runs - 1])
    # A rebuild from aggregates in prod (1,008 intervals, 7 days): ~1,030 requests, at S3's pace ~1.6 s of a run
    print(f"whole rebuild from aggregates: ~{HISTORY + 2 * days + 2} S3 requests")
