"""History reads: per-interval aggregates (written, reused, invalidated), ordered parallel reads, the time
budget of a catch-up, and a rebuild that continues over several runs to the state of an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.history import (
    AGGREGATE_FILE_NAME,
    DataFile,
    Deadline,
    HistoryReader,
    LocalIntervalSource,
    StoredAggregate,
    aggregation_signature,
)
from anomaly_detector.logic import detect_interval
from anomaly_detector.metric_set import Measure
from anomaly_detector.scoring import IntervalAggregate, aggregate_csv
from anomaly_detector.stores import LocalDirStore, partition_path

SETTINGS = DetectorSettings(frequency_minutes=10, anomaly_threshold=48.0, history_length=24)
STEP = timedelta(minutes=10)
START = datetime(2026, 3, 2, tzinfo=UTC)
INTERVALS = "metrics/intervals/"
AGGREGATES = "metrics/detector-aggregates/"


class CountingSource(LocalIntervalSource):
    """The local source, counting CSV reads (a frozen dataclass: the counter lives in a list)."""

    csv_reads: list[datetime]

    def __init__(self, root: Path, read_workers: int = 4) -> None:
        super().__init__(root, INTERVALS, AGGREGATES, read_workers)
        object.__setattr__(self, "csv_reads", [])

    def read_data_files(self, interval_start: datetime, files: Sequence[DataFile]) -> list[str]:
        self.csv_reads.append(interval_start)
        return super().read_data_files(interval_start, files)


class StepClock:
    """A clock that moves one unit per interval read (so a budget counts reads, whatever the machine's load)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aggregate(texts: list[str]) -> IntervalAggregate:
    return aggregate_csv(texts, "marketplace", "views", "event_time")


def write_batch(root: Path, start: datetime, batch: int, totals: dict[str, float]) -> None:
    folder = root / partition_path(INTERVALS, start) / f"batch_id={batch:012d}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{key},{start:%Y-%m-%d %H:%M:%S},{value}" for key, value in totals.items()]
    (folder / "part-00000.csv").write_text("marketplace,event_time,views\n" + "\n".join(rows) + "\n")


def totals_for(index: int) -> dict[str, float]:
    return {"us": 100.0 + index % 7, "de": 50.0 + (index * 3) % 5, "jp": 20.0 + index % 3}


def seed(root: Path, count: int, batches: int = 2) -> None:
    for index in range(count):
        for batch in range(batches):
            write_batch(root, START + index * STEP, index * batches + batch, totals_for(index))


@pytest.fixture
def store(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path, INTERVALS, "metrics/anomalies/", "metrics/detector-state/history.json")


def reader_for(store: LocalDirStore, source: Any) -> HistoryReader:
    return HistoryReader(store, aggregate, aggregation_signature(SETTINGS), source)


def test_an_interval_read_from_csvs_leaves_an_aggregate_that_the_next_read_uses(store: LocalDirStore) -> None:
    # Given an interval with two micro-batches
    seed(store.root, 1)
    source = CountingSource(store.root)
    reader = reader_for(store, source)
    # When it is read twice
    first = reader.read(START)
    second = reader.read(START)
    # Then the CSVs were read once, and the second read gave the same totals from totals.json
    assert source.csv_reads == [START]
    assert first == second == IntervalAggregate({"us": 200.0, "de": 100.0, "jp": 40.0}, rows=6, skipped_rows=0)
    document = json.loads((store.root / partition_path(AGGREGATES, START) / AGGREGATE_FILE_NAME).read_text())
    assert document["batch_ids"] == ["000000000000", "000000000001"]
    assert document["totals"] == {"us": 200.0, "de": 100.0, "jp": 40.0}
    assert document["rows"] == 6 and document["skipped_rows"] == 0


def test_a_late_or_replayed_batch_makes_the_interval_be_read_again(store: LocalDirStore) -> None:
    # Given an interval whose aggregate was written
    seed(store.root, 1)
    source = CountingSource(store.root)
    reader = reader_for(store, source)
    reader.read(START)
    # When a new batch arrives for it
    write_batch(store.root, START, 7, {"us": 1.0})
    # Then the next read sees it (CSVs again, new aggregate)
    assert reader.read(START).totals["us"] == 201.0
    # And when a batch is replayed with other content (its folder rewritten), that is seen too
    write_batch(store.root, START, 7, {"us": 5.0, "de": 1.0})
    assert reader.read(START).totals == {"us": 205.0, "de": 101.0, "jp": 40.0}
    assert source.csv_reads == [START, START, START]
    assert json.loads((store.root / partition_path(AGGREGATES, START) / AGGREGATE_FILE_NAME).read_text())[
        "batch_ids"
    ] == ["000000000000", "000000000001", "000000000007"]


def test_an_aggregate_of_other_settings_or_corrupt_is_not_used(store: LocalDirStore) -> None:
    seed(store.root, 1)
    source = CountingSource(store.root)
    reader_for(store, source).read(START)
    # Other aggregation settings (here another measure column) never reuse it
    other = dataclasses.replace(SETTINGS, measures=(Measure("revenue", "sum"),))
    assert aggregation_signature(other) != aggregation_signature(SETTINGS)
    # while judging-only settings do
    assert aggregation_signature(dataclasses.replace(SETTINGS, anomaly_threshold=70.0)) == aggregation_signature(
        SETTINGS
    )
    HistoryReader(store, aggregate, aggregation_signature(other), source).read(START)
    # A corrupt document is read past
    (store.root / partition_path(AGGREGATES, START) / AGGREGATE_FILE_NAME).write_text("{not json")
    reader_for(store, source).read(START)
    assert source.csv_reads == [START, START, START]
    assert StoredAggregate.from_json('{"format": 99}') is None


def test_an_interval_without_files_is_empty_and_writes_nothing(store: LocalDirStore) -> None:
    source = CountingSource(store.root)
    assert reader_for(store, source).read(START) == IntervalAggregate({}, 0, 0)
    assert not (store.root / AGGREGATES).exists()


def test_parallel_reads_come_back_in_interval_order_and_stop_at_the_deadline(store: LocalDirStore) -> None:
    seed(store.root, 40, batches=1)
    starts = [START + index * STEP for index in range(40)]
    reader = reader_for(store, CountingSource(store.root, read_workers=8))
    # All of them, in order, when there is time
    assert [start for start, _ in reader.read_in_order(starts, Deadline.never())] == starts
    # None started once the deadline has passed
    assert list(reader.read_in_order(starts, Deadline(0.0, clock=lambda: 1.0))) == []


def test_deadline_for_a_lambda_keeps_the_margin() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 120_000

    deadline = Deadline.for_lambda(Context(), margin_seconds=30)
    assert 89.0 < deadline.remaining() <= 90.0
    assert not Deadline.never().expired()


class Publisher:
    def publish(self, subject: str, message: str) -> None:
        raise AssertionError("nothing is judged in these runs")


class Metrics:
    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []

    def put_metrics(self, values: Any, timestamp: datetime, *, by_measure: Any = None) -> None:
        self.calls.append(dict(values))


class BudgetedSource(CountingSource):
    """Each interval read moves the clock by one: a budget of N lets about N reads start."""

    def __init__(self, root: Path, clock: StepClock) -> None:
        super().__init__(root, read_workers=1)  # one after the other: the budget is deterministic
        object.__setattr__(self, "clock", clock)

    def read_aggregate(self, interval_start: datetime) -> str | None:
        self.clock.now += 1  # type: ignore[attr-defined]
        return super().read_aggregate(interval_start)


def test_a_rebuild_continues_over_runs_to_the_state_of_an_uninterrupted_one(store: LocalDirStore) -> None:
    # Given 24 stored intervals (the history length) and 3 more to run, and no state
    history = SETTINGS.history_length
    seed(store.root, history + 3)
    live = [START + (history + offset) * STEP for offset in range(3)]
    clock = StepClock()
    source = BudgetedSource(store.root, clock)
    metrics = Metrics()
    reports = []
    # When each scheduled run gets a budget of 10 interval reads (sequential reader: deterministic)
    for interval_start in live:
        reports.append(
            detect_interval(
                store=store,
                publisher=Publisher(),
                metrics=metrics,
                interval_start=interval_start,
                settings=SETTINGS,
                history=source,
                deadline=Deadline.after(10, clock),
            )
        )
    # Then the first runs learn in chunks and judge nothing, and the last one judges its interval
    assert [r.mode for r in reports] == ["rebuilding", "rebuilding", "live"]
    assert [r.caught_up_intervals for r in reports] == [10, 10, 6]
    assert [r.intervals_left for r in reports] == [14, 5, 0]
    assert len(reports[-1].scores) == 4 and len(metrics.calls) == 1  # 3 marketplaces and their total
    interrupted = store.read_state()
    # And its state is that of one uninterrupted rebuild of the same intervals (same start, same order)
    reference_store = LocalDirStore(store.root, INTERVALS, "metrics/anomalies/", "reference/history.json")
    detect_interval(
        store=reference_store,
        publisher=Publisher(),
        metrics=Metrics(),
        interval_start=live[-1],
        settings=dataclasses.replace(SETTINGS, history_length=history + 2),
        history=LocalIntervalSource(store.root, INTERVALS, AGGREGATES),
    )
    assert reference_store.read_state() == interrupted


def test_a_run_out_of_time_before_learning_anything_keeps_no_state(store: LocalDirStore) -> None:
    seed(store.root, 5)
    report = detect_interval(
        store=store,
        publisher=Publisher(),
        metrics=Metrics(),
        interval_start=START + 24 * STEP,
        settings=SETTINGS,
        history=LocalIntervalSource(store.root, INTERVALS, AGGREGATES),
        deadline=Deadline(0.0, clock=lambda: 1.0),
    )
    assert report.mode == "rebuilding" and report.intervals_left == 24
    assert store.read_state() is None
