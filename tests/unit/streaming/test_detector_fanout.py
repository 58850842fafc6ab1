"""The partitioned fan-out: P partition runs + the final step produce exactly what detect_interval produces, and
repeated, late and empty intervals are handled as the module says."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.fanout import (
    FanoutError,
    GroupsReport,
    PartitionScores,
    form_interval_groups,
    groups_state_key,
    score_partition,
    scores_key,
)
from anomaly_detector.logic import PublisherAlertTarget, detect_interval
from anomaly_detector.metric_set import Measure
from anomaly_detector.partitions import merge_partition_scores, partition_of, partition_state_key, split_totals
from anomaly_detector.scoring import DetectorState, score_interval
from anomaly_detector.stores import (
    DocumentChangedError,
    LocalDirStore,
    LocalDocumentStore,
    VersionedDocument,
    partition_path,
)
from detector_fakes import CollectingMetrics, CollectingPublisher

SETTINGS = DetectorSettings(
    dimensions=("platform", "marketplace"),
    measures=(Measure("views", "sum"), Measure("revenue", "sum")),
    frequency_minutes=5,
    anomaly_threshold=47.6,
    history_length=288,
    alert_min_severity=50.0,
)
STEP = timedelta(minutes=5)
START = datetime(2026, 3, 2, tzinfo=UTC)
PLATFORMS = ("web", "ios")
MARKETPLACES = ("de", "us", "jp")
WARM_UP = 130  # intervals learnt before the first judged one (the model judges from its 101st value)
INTERVALS = "metrics/intervals/"
STATE_KEY = "fanout/detector-state/history.json"
SCORES_PREFIX = "fanout/scores/"


def rows_of(index: int) -> list[tuple[str, str, float, float]]:
    """One interval's (platform, marketplace, views, revenue) rows, with the injected anomalies."""
    rng = random.Random(index)
    rows = []
    for p, platform in enumerate(PLATFORMS):
        for m, marketplace in enumerate(MARKETPLACES):
            views = 200.0 * (p + 1) * (m + 1) * rng.lognormvariate(0, 0.03)
            revenue = 30.0 * (m + 2) * (p + 1) * rng.lognormvariate(0, 0.03)
            if WARM_UP + 3 <= index < WARM_UP + 7 and (platform, marketplace) == ("web", "de"):
                revenue *= 0.05  # a drop lasting 4 intervals: one group, new then ongoing
            if index == WARM_UP + 9 and platform == "ios":
                views *= 1.25  # thin rise over every ios combination: seen at the roll-up
            if index == WARM_UP + 11 and marketplace == "jp":
                continue  # jp gone: its series score as 0
            rows.append((platform, marketplace, round(views, 2), round(revenue, 2)))
    return rows


def write_interval(root: Path, index: int) -> None:
    start = START + index * STEP
    folder = root / partition_path(INTERVALS, start) / "batch_id=000000000001"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{start:%Y-%m-%d %H:%M:%S}"
    lines = ["event_time,platform,marketplace,views,revenue"]
    lines += [f"{stamp},{p},{m},{v},{r}" for p, m, v, r in rows_of(index)]
    (folder / "part-00000.csv").write_text("\n".join(lines) + "\n")


@dataclass
class FanoutRun:
    """The P-partition path on its own state, anomalies folder and scores prefix (same interval files)."""

    root: Path
    partitions: int
    publisher: CollectingPublisher = field(default_factory=CollectingPublisher)
    metrics: CollectingMetrics = field(default_factory=CollectingMetrics)

    @property
    def store(self) -> LocalDirStore:
        return LocalDirStore(self.root, INTERVALS, "fanout/anomalies/", STATE_KEY)

    @property
    def documents(self) -> LocalDocumentStore:
        return LocalDocumentStore(self.root)

    def score(self, start: datetime, partition: int, documents: Any = None, **options: Any) -> Any:
        return score_partition(
            store=self.store,
            documents=documents or self.documents,
            interval_start=start,
            partition=partition,
            partitions=self.partitions,
            settings=SETTINGS,
            state_key=STATE_KEY,
            scores_prefix=SCORES_PREFIX,
            **options,
        )

    def form(self, start: datetime, **options: Any) -> GroupsReport:
        return form_interval_groups(
            store=self.store,
            documents=self.documents,
            metrics=self.metrics,
            interval_start=start,
            partitions=self.partitions,
            settings=SETTINGS,
            state_key=STATE_KEY,
            scores_prefix=SCORES_PREFIX,
            alert_targets=[PublisherAlertTarget(self.publisher)],
            **options,
        )

    def detect(self, start: datetime) -> GroupsReport:
        for partition in range(self.partitions):
            self.score(start, partition)
        return self.form(start)


def groups_file(root: Path, prefix: str, start: datetime) -> str | None:
    path = root / partition_path(prefix, start) / "groups.jsonl"
    return path.read_text() if path.is_file() else None


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any], CollectingPublisher, Any]:
    """Given 145 stored intervals, the whole path (detect_interval) and the 4-partition path over the last 15."""
    root = tmp_path_factory.mktemp("fanout")
    for index in range(WARM_UP + 15):
        write_interval(root, index)
    whole_store = LocalDirStore(root, INTERVALS, "whole/anomalies/", "whole/detector-state/history.json")
    whole_publisher, whole_metrics = CollectingPublisher(), CollectingMetrics()
    fanout = FanoutRun(root, 4)
    reports = []
    for index in range(WARM_UP, WARM_UP + 16):  # the last one has no files at all: an empty interval
        start = START + index * STEP
        whole = detect_interval(
            store=whole_store, publisher=whole_publisher, metrics=whole_metrics, interval_start=start, settings=SETTINGS
        )
        reports.append((whole, fanout.detect(start)))
    return root, reports, whole_publisher, (whole_metrics, fanout)


def test_four_partitions_give_the_same_groups_alerts_and_metrics_as_one_run(both_paths: Any) -> None:
    root, reports, whole_publisher, (whole_metrics, fanout) = both_paths
    # Then every interval's groups.jsonl is byte for byte the same
    for whole, _ in reports:
        assert groups_file(root, "fanout/anomalies/", whole.interval_start) == groups_file(
            root, "whole/anomalies/", whole.interval_start
        )
    # And the same alerts were sent, and the same metrics emitted, in the same order
    assert fanout.publisher.messages == whole_publisher.messages
    assert fanout.metrics.calls == whole_metrics.calls
    assert fanout.metrics.by_measure == whole_metrics.by_measure
    # And the reports agree on what was scored and found
    for whole, parted in reports:
        assert (parted.mode, parted.rows, parted.series_scored, parted.series_warming_up) == (
            whole.mode,
            whole.rows,
            len(whole.scored),
            len(whole.warming_up),
        )
        assert [s.dimension_value for s in parted.anomalies] == [s.dimension_value for s in whole.anomalies]
        assert parted.summary()["ongoing_anomalies"] == whole.summary()["ongoing_anomalies"]


def test_the_comparison_covers_an_ongoing_group_a_rollup_group_a_gone_marketplace_and_an_empty_interval(
    both_paths: Any,
) -> None:
    root, reports, whole_publisher, (whole_metrics, _) = both_paths
    records = [
        json.loads(line)
        for whole, _ in reports
        for line in (groups_file(root, "whole/anomalies/", whole.interval_start) or "").splitlines()
    ]
    drop = [
        r
        for r in records
        if r["measure"] == "revenue"
        and r["direction"] == "low"
        and r["contributors"]
        and r["contributors"][0]["dimensions"] == {"platform": "web", "marketplace": "de"}
    ]
    assert [r["status"] for r in drop][:2] == ["new", "ongoing"]
    assert len({r["group_id"] for r in drop[:3]}) == 1
    assert any(r["alerted"] for r in drop) and whole_publisher.messages
    assert any(r["measure"] == "views" and r["level"] in ("rollup", "total") for r in records)
    assert any(r["direction"] == "low" and r["contributors"][0]["dimensions"]["marketplace"] == "jp" for r in records)
    # The last interval had no files: empty, not judged
    assert whole_metrics.calls[-1][0]["EmptyInterval"] == 1 and reports[-1][1].rows == 0


def test_a_repeated_delivery_does_nothing_again(both_paths: Any) -> None:
    root, reports, _, (_, fanout) = both_paths
    last = reports[-1][1].interval_start
    before = (root / scores_key(SCORES_PREFIX, last, 2, 4)).read_text()
    sent, emitted = len(fanout.publisher.messages), len(fanout.metrics.calls)
    assert fanout.score(last, 2).mode == "already processed"
    assert (root / scores_key(SCORES_PREFIX, last, 2, 4)).read_text() == before
    assert fanout.form(last).mode == "already processed"
    assert (len(fanout.publisher.messages), len(fanout.metrics.calls)) == (sent, emitted)


def test_a_late_scheduled_interval_is_refused_and_a_hand_rerun_is_judged_on_a_rebuilt_history(
    both_paths: Any,
) -> None:
    root, reports, _, (_, fanout) = both_paths
    older = reports[3][1].interval_start
    state_before = (root / groups_state_key(STATE_KEY)).read_text()
    sent = len(fanout.publisher.messages)
    # A scheduled (not hand) run of an older interval: its verdicts stand, the final step refuses it
    assert {fanout.score(older, p).mode for p in range(4)} == {"already processed"}
    assert fanout.form(older).mode == "superseded"
    assert len(fanout.publisher.messages) == sent
    # A hand re-run is judged on a rebuilt history and leaves the states alone
    rerun = [fanout.score(older, p, rerun=True) for p in range(4)]
    assert {part.mode for part in rerun} == {"rebuilt"}
    assert fanout.form(older, rerun=True).mode == "rebuilt"
    assert (root / groups_state_key(STATE_KEY)).read_text() == state_before


def test_missing_or_foreign_verdicts_are_a_clear_error(tmp_path: Path) -> None:
    fanout = FanoutRun(tmp_path, 2)
    start = START + WARM_UP * STEP
    fanout.score(start, 0)
    with pytest.raises(FanoutError, match="partition 1 of 2 has no verdicts for 2026-03-02T10:50:00Z"):
        fanout.form(start)
    (tmp_path / scores_key(SCORES_PREFIX, start, 1, 2)).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / scores_key(SCORES_PREFIX, start, 1, 2)).write_text(
        (tmp_path / scores_key(SCORES_PREFIX, start, 0, 2)).read_text()
    )
    with pytest.raises(FanoutError, match="another interval, partitioning or metric set"):
        fanout.form(start)


def test_a_partition_whose_series_are_all_absent_scores_them_as_zero_when_the_interval_has_data() -> None:
    # Given 12 series learnt by 3 partitions and by one state
    keys = [f"views|marketplace=m{index}" for index in range(12)]
    whole = DetectorState(frequency_minutes=5)
    parts = [DetectorState(frequency_minutes=5) for _ in range(3)]
    for interval in range(120):
        moment = START + interval * STEP
        totals = {key: 100.0 + (index * 7 + interval * 3) % 11 for index, key in enumerate(keys)}
        if interval == 119:
            # When only partition 0's series have data in the last interval
            totals = {key: value for key, value in totals.items() if partition_of(key, 3) == 0}
        at_once = score_interval(whole, moment, totals, 47.6, 288)
        by_partition = [
            score_interval(state, moment, part, 47.6, 288, has_data=bool(totals))
            for state, part in zip(parts, split_totals(totals, 3), strict=True)
        ]
        assert merge_partition_scores(by_partition) == at_once
    # Then the silent partitions' series were scored (as 0: news), not skipped as "no data"
    silent = [score for score in at_once if partition_of(score.dimension_value, 3) != 0]
    assert silent and all(score.value == 0.0 and score.is_anomaly for score in silent)


@dataclass
class SaveOvertaken:
    """A partition's documents where ``meanwhile`` runs once, just before this run saves its state: an overlap."""

    inner: LocalDocumentStore
    state_key: str
    meanwhile: Any
    fired: bool = False

    def read_document(self, key: str) -> str | None:
        return self.inner.read_document(key)

    def write_document(self, key: str, body: str) -> str:
        return self.inner.write_document(key, body)

    def read_versioned(self, key: str) -> VersionedDocument:
        return self.inner.read_versioned(key)

    def write_if_unchanged(self, key: str, body: str, read: VersionedDocument) -> str:
        if key == self.state_key and not self.fired:
            self.fired = True
            self.meanwhile()
        return self.inner.write_if_unchanged(key, body, read)


def _judged_once(tmp_path: Path) -> tuple[FanoutRun, datetime]:
    """Given stored intervals and a 2-partition fan-out that has judged interval k (its first, after a catch-up)."""
    for index in range(WARM_UP + 3):
        write_interval(tmp_path, index)
    run = FanoutRun(tmp_path, 2)
    first = START + WARM_UP * STEP
    run.detect(first)
    return run, first


def _overtaken_while_saving(run: FanoutRun, start: datetime, meanwhile_start: datetime) -> Any:
    """Partition 0's run of ``start``, with a whole run of ``meanwhile_start`` just before it saves its state."""
    state_key = partition_state_key(STATE_KEY, 0, 2)
    return run.score(start, 0, SaveOvertaken(run.documents, state_key, lambda: run.score(meanwhile_start, 0)))


def _state_of(run: FanoutRun, partition: int) -> DetectorState:
    text = run.documents.read_document(partition_state_key(STATE_KEY, partition, 2))
    return DetectorState.from_json(text, 5, metric_set=SETTINGS.metric_set.signature)


def test_a_slow_run_does_not_put_back_an_older_state_over_a_later_runs(tmp_path: Path) -> None:
    run, k = _judged_once(tmp_path)
    slow, later = k + STEP, k + 2 * STEP
    # When partition 0's run of k+1 is overtaken, just before it saves, by the next execution's run of k+2
    overtaken = _overtaken_while_saving(run, slow, later)
    # Then the slow run gives way: the later run's state stands (it learnt k+1 in its catch-up)
    assert overtaken.mode == "superseded"
    assert _state_of(run, 0).last_interval_start == later
    # And the final step of k+1 refuses it, so nothing is announced for it; k+2 goes on as usual
    run.score(slow, 1)
    sent = len(run.publisher.messages)
    assert run.form(slow).mode == "superseded"
    assert len(run.publisher.messages) == sent
    run.score(later, 1)
    assert run.form(later).mode == "live"


def test_a_later_run_replaces_the_state_a_slower_earlier_run_saved_meanwhile(tmp_path: Path) -> None:
    run, k = _judged_once(tmp_path)
    slow, later = k + STEP, k + 2 * STEP
    # When the run of k+2 read the state at k, caught up on k+1 and scored k+2, and the slower run of k+1 saves
    # its state just before k+2's run saves
    result = _overtaken_while_saving(run, later, slow)
    # Then k+2's state is saved, and it is exactly the state of a run that never overlapped: k+1 learnt once
    assert result.mode == "live"
    reference, _ = _judged_once(tmp_path / "reference")
    assert reference.score(later, 0).mode == "live"
    state_key = partition_state_key(STATE_KEY, 0, 2)
    assert run.documents.read_document(state_key) == reference.documents.read_document(state_key)


def test_two_executions_of_the_same_interval_save_one_state_and_both_keep_the_verdicts(tmp_path: Path) -> None:
    run, k = _judged_once(tmp_path)
    following = k + STEP
    # When a second execution of k+1 (a hand start beside the schedule's) saves partition 0's state first
    second = _overtaken_while_saving(run, following, following)
    # Then this one does not save again, and its verdicts stay judged, so the final step forms the groups
    assert second.mode == "already processed"
    verdicts = run.documents.read_document(scores_key(SCORES_PREFIX, following, 0, 2))
    assert verdicts is not None and PartitionScores.from_json(verdicts).judged
    assert _state_of(run, 0).last_interval_start == following
    run.score(following, 1)
    assert run.form(following).mode == "live"


@dataclass
class StateAlwaysChanged(SaveOvertaken):
    """Every save of the state finds it changed again (an older state each time): a run that cannot settle."""

    def write_if_unchanged(self, key: str, body: str, read: VersionedDocument) -> str:
        if key == self.state_key:
            raise DocumentChangedError(key)
        return self.inner.write_if_unchanged(key, body, read)


def test_a_state_that_keeps_changing_fails_the_run_after_a_few_attempts_and_is_left_as_it_was(tmp_path: Path) -> None:
    run, k = _judged_once(tmp_path)
    state_key = partition_state_key(STATE_KEY, 0, 2)
    before = run.documents.read_document(state_key)
    # When every save of partition 0's state for k+1 is refused, and the state found is always the older one
    with pytest.raises(DocumentChangedError, match=r"part-0-of-2\.json changed since it was read"):
        run.score(k + STEP, 0, StateAlwaysChanged(run.documents, state_key, meanwhile=None))
    # Then the run fails (the execution fails, alarmed on) and the state is the one it found
    assert run.documents.read_document(state_key) == before
