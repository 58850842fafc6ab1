"""The partitioned fan-out (``streaming.detector_partitions`` P > 1): each hash partition of the series is scored in a
run of its own, then one final step forms the interval's groups from every partition's verdicts.

- :func:`score_partition` (one per partition, in parallel): reads the interval once (through the
  :class:`~anomaly_detector.history.HistoryReader`, so from its ``totals.json`` aggregate when unchanged), keeps
  its own series (``split_totals(...)[p]``), catches up and scores them against its own state
  (``<state stem>.part-<p>-of-<P>.json``), and writes its verdicts to
  ``<scores_prefix>intvl_date=.../intvl_hhmm=.../part-<p>-of-<P>.json`` (:class:`PartitionScores`), then its state.
- :func:`form_interval_groups` (once, after every partition): reads the P verdict files, merges them
  (:func:`~anomaly_detector.partitions.merge_partition_scores`), and does what :func:`~anomaly_detector.logic.
  detect_interval` does after scoring: ``form_groups`` with the open groups kept in a small groups state
  (``<state stem>.groups.json``), feedback, alerts, ``groups.jsonl``, metrics, then the groups state.

For the same stored intervals the two steps produce exactly the groups, alerts and metrics of ``detect_interval``
(tested). What a verdict file holds is what ``form_groups`` and the metrics need, not every series: every series
that can be a group member (scored, and opening an anomaly or inside an open one), every leaf combination that
moved away from its expected value (a roll-up member's contributors and their shares), and the partition's counts.
The interval's rows and measure totals come from the whole interval's aggregate, which every partition reads.

An interval with data in which all of a partition's series are absent is *not* "no data": the partition scores its
known series as 0, as scoring the whole interval at once does; only an interval with no data at all is empty.

Ordering. Partition states and the groups state each carry the last interval they took in:

- the same interval again (a repeated delivery) does nothing ("already processed"; the verdict file is written
  before the state, so it is there);
- a scheduled interval older than the state's ("superseded": a later execution got there first and learnt it
  in its catch-up) is refused: no scoring, no groups, no alert; so two executions never interleave on the groups
  state, and a late one cannot re-announce what a later one announced;
- a hand re-run of an older interval (``rerun``) is judged against a history rebuilt from the stored files and
  saves no state ("rebuilt"), as ``detect_interval`` does;
- open groups continue only when the groups state's last interval is the one just before and no partition had
  to catch up (``detect_interval`` drops them after a catch-up too);
- two executions overlap when one takes longer than an interval. A partition saves its state with a conditional
  write (``DocumentStore.write_if_unchanged``): if another run saved the state since this one read it, the state
  found stands when it took in this interval or a later one (this run is then superseded, or, for the same
  interval, already processed); an older one is replaced, since this run caught up on its interval too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from anomaly_detector.alerts import AlertTarget
from anomaly_detector.config import DetectorSettings
from anomaly_detector.feedback import FeedbackStore
from anomaly_detector.groups import OpenGroup, form_groups
from anomaly_detector.history import Deadline, HistoryReader, IntervalSource, aggregation_signature
from anomaly_detector.logic import (
    MetricsSink,
    _aggregate_stored_texts,
    _aggregate_texts,
    _aligned_utc,
    announce_groups,
    put_interval_metrics,
    write_groups,
)
from anomaly_detector.metric_set import parse_series_key, totals_by_measure
from anomaly_detector.partitions import merge_partition_scores, partition_of, partition_state_key
from anomaly_detector.scoring import (
    DetectorState,
    DimensionScore,
    format_time,
    intervals_to_catch_up,
    parse_time,
    score_interval,
)
from anomaly_detector.series_model import DEFAULT_MODEL, ModelParams
from anomaly_detector.stores import (
    DocumentChangedError,
    DocumentStore,
    IntervalStore,
    VersionedDocument,
    partition_path,
)

logger = Logger(child=True)

SCORES_FORMAT = 1  # of PartitionScores documents
GROUPS_STATE_VERSION = 1
# Modes of a partition run and of the final step (see the module docstring).
LIVE, REBUILT, REBUILDING, ALREADY_PROCESSED, SUPERSEDED = (
    "live",
    "rebuilt",
    "rebuilding",
    "already processed",
    ("superseded"),
)


class FanoutError(RuntimeError):
    """The partitions' verdicts cannot be combined (missing, of another interval, partitioning or metric set)."""


def scores_key(scores_prefix: str, interval_start: datetime, partition: int, partitions: int) -> str:
    return partition_path(scores_prefix, interval_start) + f"part-{partition}-of-{partitions}.json"


def groups_state_key(state_key: str) -> str:
    """``metrics/detector-state/history.json`` -> ``metrics/detector-state/history.groups.json``."""
    folder, slash, name = state_key.rpartition("/")
    stem = name.rpartition(".")[0] or name
    return f"{folder}{slash}{stem}.groups.json"


@dataclass(frozen=True)
class PartitionScores:
    """One partition's verdicts for one interval: the document the final step reads."""

    interval_start: datetime
    partition: int
    partitions: int
    metric_set: str
    mode: str
    has_data: bool = False  # the whole interval had data (not only this partition)
    rows: int = 0  # the whole interval's
    skipped_rows: int = 0
    measure_totals: dict[str, float] = field(default_factory=dict)  # the whole interval's
    caught_up_intervals: int = 0
    intervals_left: int = 0
    series_scored: int = 0  # this partition's
    series_warming_up: int = 0
    max_severity: float = 0.0
    ongoing: int = 0  # series inside an open anomaly that did not open now
    verdicts: tuple[DimensionScore, ...] = ()  # what the final step needs (module docstring)

    @property
    def judged(self) -> bool:
        return self.mode in (LIVE, REBUILT)

    def to_json(self) -> str:
        document = dataclasses.asdict(self)
        document["format"] = SCORES_FORMAT
        document["interval_start"] = format_time(self.interval_start)
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PartitionScores:
        document = json.loads(text)
        if document.pop("format", None) != SCORES_FORMAT:
            raise FanoutError("a partition verdict file of another format")
        document["interval_start"] = parse_time(document["interval_start"])
        document["verdicts"] = tuple(DimensionScore(**verdict) for verdict in document["verdicts"])
        return cls(**document)

    def summary(self) -> dict[str, object]:
        return {
            "interval_start": format_time(self.interval_start),
            "partition": self.partition,
            "partitions": self.partitions,
            "mode": self.mode,
            "series_scored": self.series_scored,
            "series_warming_up": self.series_warming_up,
            "verdicts_kept": len(self.verdicts),
            "caught_up_intervals": self.caught_up_intervals,
            "intervals_left": self.intervals_left,
        }


def _needed_by_final_step(score: DimensionScore) -> bool:
    if score.status != "scored":
        return False
    if score.is_anomaly or score.ongoing:
        return True  # a possible group member
    # A leaf that moved: a contributor of a roll-up member with no anomalous leaf below it.
    return (
        parse_series_key(score.dimension_value).level == "combination"
        and score.expected is not None
        and score.value != score.expected
    )


def score_partition(
    *,
    store: IntervalStore,
    documents: DocumentStore,
    interval_start: datetime,
    partition: int,
    partitions: int,
    settings: DetectorSettings,
    state_key: str,
    scores_prefix: str,
    rerun: bool = False,
    params: ModelParams = DEFAULT_MODEL,
    history: IntervalSource | None = None,
    deadline: Deadline | None = None,
) -> PartitionScores:
    """Score partition ``partition`` of ``partitions`` for one interval and write its verdict file (then its state).

    ``rerun``: a hand re-run, which may be older than the state (judged on a rebuilt history, state left alone).
    """
    interval_start = _aligned_utc(interval_start, settings.frequency_minutes)
    metric_set = settings.metric_set
    own_state_key = partition_state_key(state_key, partition, partitions)
    verdicts_key = scores_key(scores_prefix, interval_start, partition, partitions)
    base = PartitionScores(interval_start, partition, partitions, metric_set.signature, LIVE)
    stored = documents.read_versioned(own_state_key)
    state = DetectorState.from_json(stored.text, settings.frequency_minutes, params, metric_set.signature)
    mode = LIVE
    if state.last_interval_start is not None and interval_start <= state.last_interval_start:
        text = documents.read_document(verdicts_key)
        written = PartitionScores.from_json(text) if text is not None else None
        # A repeated delivery (the last interval, or an older one whose verdicts a late final step may still need).
        if written is not None and written.judged and (interval_start == state.last_interval_start or not rerun):
            logger.info("Partition already scored this interval", extra=base.summary())
            return replace(written, mode=ALREADY_PROCESSED)
        if not rerun:
            # A later interval's run got here first and learnt this one in its catch-up: refuse, write a marker.
            superseded = replace(base, mode=SUPERSEDED)
            logger.warning("Interval superseded by a later one; learnt, not judged", extra=superseded.summary())
            documents.write_document(verdicts_key, superseded.to_json())
            return superseded
        mode = REBUILT
        state = DetectorState(frequency_minutes=settings.frequency_minutes, metric_set=metric_set.signature)

    def own(totals: Mapping[str, float]) -> dict[str, float]:
        return {key: value for key, value in totals.items() if partition_of(key, partitions) == partition}

    catch_up = intervals_to_catch_up(state, interval_start, settings.frequency_minutes, settings.history_length)
    signature = aggregation_signature(settings)
    reader = HistoryReader(store, partial(_aggregate_stored_texts, settings=settings), signature, history)
    current_reader = HistoryReader(store, partial(_aggregate_texts, settings=settings), signature, history)
    budget = deadline if deadline is not None and mode == LIVE else Deadline.never()
    learnt = 0
    for missed_start, missed in reader.read_in_order(catch_up, budget):
        state.learn_interval(
            missed_start, own(missed.totals), settings.history_length, params, has_data=bool(missed.totals)
        )
        learnt += 1
    if learnt < len(catch_up):
        rebuilding = replace(base, mode=REBUILDING, caught_up_intervals=learnt, intervals_left=len(catch_up) - learnt)
        if learnt:
            _save_state(documents, own_state_key, state, stored, settings, params)
        documents.write_document(verdicts_key, rebuilding.to_json())
        logger.warning("Partition history rebuild continues in the next run", extra=rebuilding.summary())
        return rebuilding

    aggregate = current_reader.read(interval_start)
    scores = score_interval(
        state,
        interval_start,
        own(aggregate.totals),
        settings.anomaly_threshold,
        settings.history_length,
        params,
        has_data=bool(aggregate.totals),
    )
    scored = [s for s in scores if s.status == "scored"]
    result = replace(
        base,
        mode=mode,
        has_data=bool(aggregate.totals),
        rows=aggregate.rows,
        skipped_rows=aggregate.skipped_rows,
        measure_totals=totals_by_measure(aggregate.totals, metric_set),
        caught_up_intervals=len(catch_up),
        series_scored=len(scored),
        series_warming_up=sum(s.status == "warming_up" for s in scores),
        max_severity=max((s.severity for s in scored), default=0.0),
        ongoing=sum(s.ongoing and not s.is_anomaly for s in scores),
        verdicts=tuple(s for s in scores if _needed_by_final_step(s)),
    )
    # The verdicts first: a failure between the two writes redoes the interval against the same state.
    documents.write_document(verdicts_key, result.to_json())
    standing = _save_state(documents, own_state_key, state, stored, settings, params) if mode == LIVE else None
    if standing is not None and standing > interval_start:
        # An overlapping execution of a later interval saved this partition's state while this run scored (it
        # learnt this interval in its catch-up): its state stands, and this interval gives way as a late run's.
        superseded = replace(base, mode=SUPERSEDED)
        logger.warning("Partition state moved on while scoring; superseded", extra=superseded.summary())
        documents.write_document(verdicts_key, superseded.to_json())
        return superseded
    if standing is not None:
        # Another execution of this same interval saved first; both judged it, from the same history.
        logger.info("Partition scored this interval in an overlapping run too", extra=result.summary())
        return replace(result, mode=ALREADY_PROCESSED)
    logger.info("Partition scored", extra=result.summary())
    return result


def _save_state(
    documents: DocumentStore,
    key: str,
    state: DetectorState,
    stored: VersionedDocument,
    settings: DetectorSettings,
    params: ModelParams,
) -> datetime | None:
    """Save a partition's state unless an overlapping run saved one as far along or further.

    Returns None when saved, else the last interval of the state that stands.

    Two executions overlap when one takes longer than an interval. Without the check the last writer would
    win, and a late run could put back an older state over a later one. A conditional write refuses to
    replace a state someone else wrote since ``stored`` was read; the state found then decides: one that
    took in this state's last interval or a later one stands, an older one (a slower run of an earlier
    interval, which this run also caught up on) is replaced.
    """
    body = state.to_json()
    for _attempt in range(_SAVE_ATTEMPTS):
        try:
            documents.write_if_unchanged(key, body, stored)
            return None
        except DocumentChangedError:
            stored = documents.read_versioned(key)
            theirs = DetectorState.from_json(
                stored.text, settings.frequency_minutes, params, settings.metric_set.signature
            ).last_interval_start
            ours = state.last_interval_start
            if theirs is not None and (ours is None or theirs >= ours):
                logger.warning(
                    "Another run saved this partition's state meanwhile; its state stands",
                    extra={"state_key": key, "standing_last_interval": format_time(theirs)},
                )
                return theirs
    # Still changing after every attempt: fail this run (the execution fails, alarmed on; the next one catches up).
    raise DocumentChangedError(key)


_SAVE_ATTEMPTS = 3


@dataclass
class GroupsState:
    """The final step's own state: the last interval it formed groups for, and the groups open after it."""

    frequency_minutes: int
    metric_set: str
    last_interval_start: datetime | None = None
    open_groups: dict[str, OpenGroup] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": GROUPS_STATE_VERSION,
                "frequency_minutes": self.frequency_minutes,
                "metric_set": self.metric_set,
                "last_interval_start": format_time(self.last_interval_start) if self.last_interval_start else None,
                "open_groups": {key: group.to_dict() for key, group in self.open_groups.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None, frequency_minutes: int, metric_set: str) -> GroupsState:
        """Anything unusable (or of another frequency or metric set) gives an empty state."""
        empty = cls(frequency_minutes, metric_set)
        if not text:
            return empty
        try:
            document = json.loads(text)
            if (document.get("version"), document.get("frequency_minutes"), document.get("metric_set")) != (
                GROUPS_STATE_VERSION,
                frequency_minutes,
                metric_set,
            ):
                return empty
            last = document.get("last_interval_start")
            open_groups = {str(k): OpenGroup.from_dict(v) for k, v in document.get("open_groups", {}).items()}
            return cls(frequency_minutes, metric_set, parse_time(last) if last else None, open_groups)
        except (ValueError, TypeError, AttributeError, KeyError):
            return empty


@dataclass(frozen=True)
class GroupsReport:
    """What the final step did for one interval."""

    interval_start: datetime
    interval_end: datetime
    mode: str
    partitions: int
    rows: int = 0
    skipped_rows: int = 0
    series_scored: int = 0
    series_warming_up: int = 0
    anomalies: list[DimensionScore] = field(default_factory=list)  # series whose anomaly opened now
    groups: list[dict[str, Any]] = field(default_factory=list)
    anomalies_location: str | None = None
    alerts_sent: int = 0
    measure_totals: dict[str, float] = field(default_factory=dict)
    caught_up_intervals: int = 0
    intervals_left: int = 0
    max_severity: float = 0.0
    ongoing: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "interval_start": format_time(self.interval_start),
            "interval_end": format_time(self.interval_end),
            "partitions": self.partitions,
            "rows": self.rows,
            "series_scored": self.series_scored,
            "series_warming_up": self.series_warming_up,
            "anomalies": len(self.anomalies),
            "ongoing_anomalies": self.ongoing,
            "groups": len(self.groups),
            "new_groups": sum(group["status"] == "new" for group in self.groups),
            "alerts_sent": self.alerts_sent,
            "max_severity": round(self.max_severity, 1),
            "anomalies_location": self.anomalies_location,
            "mode": self.mode,
            "caught_up_intervals": self.caught_up_intervals,
            "intervals_left": self.intervals_left,
        }


def read_partition_scores(
    documents: DocumentStore, scores_prefix: str, interval_start: datetime, partitions: int, metric_set: str
) -> list[PartitionScores]:
    """The P verdict files of one interval, each checked to be the one asked for."""
    found = []
    for partition in range(partitions):
        key = scores_key(scores_prefix, interval_start, partition, partitions)
        text = documents.read_document(key)
        if text is None:
            raise FanoutError(
                f"partition {partition} of {partitions} has no verdicts for {format_time(interval_start)}"
            )
        scores = PartitionScores.from_json(text)
        if (scores.interval_start, scores.partition, scores.partitions, scores.metric_set) != (
            interval_start,
            partition,
            partitions,
            metric_set,
        ):
            raise FanoutError(f"{key} holds verdicts of another interval, partitioning or metric set")
        found.append(scores)
    return found


def form_interval_groups(
    *,
    store: IntervalStore,
    documents: DocumentStore,
    metrics: MetricsSink,
    interval_start: datetime,
    partitions: int,
    settings: DetectorSettings,
    state_key: str,
    scores_prefix: str,
    rerun: bool = False,
    params: ModelParams = DEFAULT_MODEL,
    alert_targets: Sequence[AlertTarget] = (),
    feedback: FeedbackStore | None = None,
) -> GroupsReport:
    """The final step for one interval, after every partition's :func:`score_partition` (module docstring)."""
    interval_start = _aligned_utc(interval_start, settings.frequency_minutes)
    step = timedelta(minutes=settings.frequency_minutes)
    interval_end = interval_start + step
    metric_set = settings.metric_set
    own_state_key = groups_state_key(state_key)
    state = GroupsState.from_json(
        documents.read_document(own_state_key), settings.frequency_minutes, metric_set.signature
    )
    mode = LIVE
    if state.last_interval_start is not None and interval_start <= state.last_interval_start:
        if interval_start == state.last_interval_start:
            logger.info(
                "Groups already formed for this interval", extra={"interval_start": format_time(interval_start)}
            )
            return GroupsReport(interval_start, interval_end, ALREADY_PROCESSED, partitions)
        if not rerun:
            logger.warning(
                "Interval superseded: groups were formed for a later one already",
                extra={"interval_start": format_time(interval_start)},
            )
            return GroupsReport(interval_start, interval_end, SUPERSEDED, partitions)
        mode = REBUILT
    parts = read_partition_scores(documents, scores_prefix, interval_start, partitions, metric_set.signature)
    if any(part.mode == SUPERSEDED for part in parts):
        logger.warning(
            "Interval superseded in a partition; learnt, not judged",
            extra={"interval_start": format_time(interval_start)},
        )
        return GroupsReport(interval_start, interval_end, SUPERSEDED, partitions)
    caught_up = max(part.caught_up_intervals for part in parts)
    if any(part.mode == REBUILDING for part in parts):
        left = max(part.intervals_left for part in parts)
        logger.warning(
            "History rebuild continues in the next run; this interval is learnt then, not judged",
            extra={"interval_start": format_time(interval_start), "intervals_left": left},
        )
        return GroupsReport(
            interval_start, interval_end, REBUILDING, partitions, caught_up_intervals=caught_up, intervals_left=left
        )
    if any(part.mode == REBUILT for part in parts):
        mode = REBUILT
    whole = parts[0]
    scores = merge_partition_scores([part.verdicts for part in parts])
    if not whole.has_data:
        logger.warning("Interval has no data", extra={"interval_start": format_time(interval_start)})
    # Open groups continue only from the interval just before, with nothing caught up in between.
    continues = mode == LIVE and state.last_interval_start == interval_start - step and caught_up == 0
    open_groups = state.open_groups if continues else {}

    member_min = params.episode_clear_fraction * settings.anomaly_threshold
    groups, still_open = form_groups(scores, metric_set, interval_start, interval_end, open_groups, member_min)
    groups, still_open, alerts_sent = announce_groups(
        groups, still_open, feedback=feedback, targets=alert_targets, min_severity=settings.alert_min_severity
    )
    anomalies_location = write_groups(store, interval_start, groups)
    report = GroupsReport(
        interval_start=interval_start,
        interval_end=interval_end,
        mode=mode,
        partitions=partitions,
        rows=whole.rows,
        skipped_rows=whole.skipped_rows,
        series_scored=sum(part.series_scored for part in parts),
        series_warming_up=sum(part.series_warming_up for part in parts),
        anomalies=sorted((s for s in scores if s.is_anomaly), key=lambda s: s.severity, reverse=True),
        groups=groups,
        anomalies_location=anomalies_location,
        alerts_sent=alerts_sent,
        measure_totals=dict(whole.measure_totals),
        caught_up_intervals=caught_up,
        max_severity=max(part.max_severity for part in parts),
        ongoing=sum(part.ongoing for part in parts),
    )
    # The same metrics, names and values as detect_interval's (one function serves both).
    put_interval_metrics(
        metrics,
        interval_start=interval_start,
        metric_set=metric_set,
        groups=groups,
        alerts_sent=alerts_sent,
        series_scored=report.series_scored,
        series_warming_up=report.series_warming_up,
        rows=report.rows,
        skipped_rows=report.skipped_rows,
        measure_totals=report.measure_totals,
    )
    if mode == LIVE:
        state.last_interval_start = interval_start
        state.open_groups = still_open
        documents.write_document(own_state_key, state.to_json())
    logger.info("Interval groups formed", extra=report.summary())
    return report
