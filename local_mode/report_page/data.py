"""What the report page shows, read from the out folder only (nothing from the run in memory).

- Interval CSVs: ``<out>/streaming/[metrics/]intervals/intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/batch_id=.../*.csv``
  as the streaming ETL writes them (a header row, then one row per event). Columns are found by name in each
  file's header, never by position; the interval is the partition path's, as the detector reads it.
- Anomaly groups: every ``groups.jsonl`` under ``<out>/streaming/`` (the group record of I14_CONTRACT.md, one
  record per group per interval), and the labels under ``<out>/streaming/[metrics/]feedback/<group id>.json``.
- The pipeline's results: ``<out>/pipeline/scored_windows.csv`` and ``anomaly_events.csv``, if the run wrote them.

Anything unreadable becomes a line in :attr:`ReportData.problems`, shown on the page, instead of an exception:
the page is for looking at a run, including a half-broken one.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app_config.settings import MeasureSpec, StreamingConfig

GROUPS_FILE = "groups.jsonl"
FEEDBACK_VALUES = ("not_anomaly", "anomaly")
EVIDENCE_KINDS = ("point", "shift", "volatility")  # the group record's "evidence"


@dataclass(frozen=True)
class MeasureSeries:
    """One measure's total over every dimension combination, per interval (start -> value)."""

    measure: MeasureSpec
    totals: dict[datetime, float]
    missing_column: bool = False


@dataclass(frozen=True)
class Contributor:
    dimensions: tuple[tuple[str, str], ...]
    deviation: float
    share: float

    def label(self) -> str:
        return "/".join(value for _, value in self.dimensions) or "(all)"


@dataclass(frozen=True)
class GroupSummary:
    """One anomaly group over all of its intervals (the records sharing its group_id)."""

    group_id: str
    measure: str
    direction: str
    opened_at: datetime
    last_interval_end: datetime
    intervals: tuple[tuple[datetime, datetime], ...]
    severity: float
    observed: float
    expected: float
    level: str
    status: str
    alerted: bool
    feedback: str | None
    contributors: tuple[Contributor, ...]
    evidence: str | None = None  # what was unusual in the group's most severe interval (point, shift, volatility)

    def root_cause(self) -> str:
        """The top contributors whose shares add to at least 50 %, e.g. "78% in web/de"."""
        parts, covered = [], 0.0
        for contributor in self.contributors:
            if covered >= 0.5 or contributor.share <= 0:
                break
            parts.append(f"{100 * contributor.share:.0f}% in {contributor.label()}")
            covered += contributor.share
        return ", ".join(parts) or "(no contributor deviates)"


@dataclass(frozen=True)
class PipelineWindow:
    start: datetime
    passengers: float
    expected: float | None
    score: float | None


@dataclass(frozen=True)
class PipelineEvent:
    event_id: str
    start: datetime
    end: datetime
    windows: str
    peak_score: str
    observed: str
    expected: str
    change_percent: str


@dataclass
class ReportData:
    frequency_minutes: int
    dimensions: tuple[str, ...]
    measures: list[MeasureSeries] = field(default_factory=list)
    groups: list[GroupSummary] = field(default_factory=list)
    pipeline_windows: list[PipelineWindow] = field(default_factory=list)
    pipeline_events: list[PipelineEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_report_data(out: Path, config: StreamingConfig) -> ReportData:
    data = ReportData(frequency_minutes=config.frequency_minutes, dimensions=tuple(config.dimensions))
    streaming = out / "streaming"
    data.measures = read_measure_totals(streaming, config.measures, data.problems)
    feedback = read_feedback_labels(streaming, data.problems)
    data.groups = summarize_groups(read_group_records(streaming, data.problems), feedback, config.dimensions)
    data.pipeline_windows = read_pipeline_windows(out / "pipeline" / "scored_windows.csv", data.problems)
    data.pipeline_events = read_pipeline_events(out / "pipeline" / "anomaly_events.csv", data.problems)
    return data


def _interval_start(path: Path) -> datetime | None:
    """The interval a partition file belongs to, from its ``intvl_date=``/``intvl_hhmm=`` folders."""
    values = dict(part.split("=", 1) for part in path.parts if part.startswith(("intvl_date=", "intvl_hhmm=")))
    try:
        return datetime.strptime(f"{values['intvl_date']} {values['intvl_hhmm']}", "%Y-%m-%d %H%M").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def interval_files(streaming: Path) -> Iterable[tuple[datetime, Path]]:
    """Every committed interval CSV (Spark's in-progress ``_temporary``/hidden files are skipped)."""
    if not streaming.is_dir():
        return
    for path in sorted(streaming.rglob("*.csv")):
        relative = path.relative_to(streaming).parts
        if "intervals" not in relative or any(part.startswith(("_", ".")) for part in relative):
            continue
        start = _interval_start(path)
        if start is not None:
            yield start, path


def _number(cell: str | None) -> float | None:
    if cell is None:
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_measure_totals(streaming: Path, measures: Sequence[MeasureSpec], problems: list[str]) -> list[MeasureSeries]:
    """Each measure's total per interval: ``sum`` adds the numeric cells (blank or non-numeric ones are skipped,
    as the detector counts them in SkippedRows), ``count`` counts the rows whose cell is present and non-empty."""
    totals: dict[str, dict[datetime, float]] = {measure.name: defaultdict(float) for measure in measures}
    seen_column = dict.fromkeys(totals, False)
    files = 0
    for start, path in interval_files(streaming):
        files += 1
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                header = set(reader.fieldnames or ())
                present = [measure for measure in measures if measure.name in header]
                for measure in present:
                    seen_column[measure.name] = True
                    totals[measure.name][start] += 0.0  # an interval with rows but no values still shows as 0
                for row in reader:
                    for measure in present:
                        cell = row.get(measure.name)
                        if measure.aggregation == "count":
                            totals[measure.name][start] += 1.0 if cell is not None and cell.strip() else 0.0
                        else:
                            value = _number(cell)
                            if value is not None:
                                totals[measure.name][start] += value
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            problems.append(f"interval file {path}: unreadable ({error})")
    series = []
    for measure in measures:
        missing = files > 0 and not seen_column[measure.name]
        if missing:
            problems.append(f"measure {measure.name!r}: no interval file has a column of that name")
        series.append(MeasureSeries(measure, dict(sorted(totals[measure.name].items())), missing_column=missing))
    return series


def read_group_records(streaming: Path, problems: list[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not streaming.is_dir():
        return records
    for path in sorted(streaming.rglob(GROUPS_FILE)):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{path}: unreadable ({error})")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                _parse_time(record["interval_start"])
                str(record["group_id"])
            except (ValueError, KeyError, TypeError) as error:
                problems.append(f"{path} line {number}: not a group record ({error})")
                continue
            records.append(record)
    return records


def read_feedback_labels(streaming: Path, problems: list[str]) -> dict[str, str]:
    """Labels recorded after a group's records were written: ``feedback/<group id>.json`` holding the label
    under ``label`` (or ``feedback``), ``not_anomaly`` or ``anomaly``."""
    labels: dict[str, str] = {}
    for folder in (streaming / "feedback", streaming / "metrics" / "feedback"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as error:
                problems.append(f"feedback label {path}: unreadable ({error})")
                continue
            value = document.get("label", document.get("feedback")) if isinstance(document, dict) else None
            if value in FEEDBACK_VALUES:
                group_id = document.get("group_id") if isinstance(document.get("group_id"), str) else path.stem
                labels[group_id] = value
    return labels


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"time {text!r} is not a string")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _deviation(direction: str, observed: float, expected: float) -> float:
    """The deviation in the group's direction, clipped at 0 on the wrong side (the contract's share basis)."""
    return max(0.0, expected - observed) if direction == "low" else max(0.0, observed - expected)


def summarize_groups(
    records: Sequence[Mapping[str, Any]], feedback: Mapping[str, str], dimensions: Sequence[str]
) -> list[GroupSummary]:
    """One summary per group id, newest first. Observed and expected add up over the group's intervals; each
    contributor's share is its deviation over all those intervals divided by the sum of the deviations."""
    by_id: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_id[str(record["group_id"])].append(record)
    summaries = []
    for group_id, group_records in by_id.items():
        ordered = sorted(group_records, key=lambda record: _parse_time(record["interval_start"]))
        latest = ordered[-1]
        direction = str(latest.get("direction", ""))
        intervals = []
        for record in ordered:
            start = _parse_time(record["interval_start"])
            try:
                end = _parse_time(record.get("interval_end"))
            except ValueError:
                end = start
            intervals.append((start, end))
        deviations: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
        for record in ordered:
            for contributor in record.get("contributors") or ():
                if not isinstance(contributor, Mapping):
                    continue
                raw = contributor.get("dimensions")
                values = raw if isinstance(raw, Mapping) else {}
                key = tuple((name, str(values.get(name, ""))) for name in dimensions if name in values) or tuple(
                    (str(name), str(value)) for name, value in values.items()
                )
                deviations[key] += _deviation(
                    direction, _float(contributor.get("observed")), _float(contributor.get("expected"))
                )
        total = sum(deviations.values())
        contributors = tuple(
            sorted(
                (
                    Contributor(key, deviation, deviation / total if total else 0.0)
                    for key, deviation in deviations.items()
                ),
                key=lambda contributor: (-contributor.deviation, contributor.label()),
            )
        )
        try:
            opened_at = _parse_time(latest.get("opened_at"))
        except ValueError:
            opened_at = intervals[0][0]
        label = feedback.get(group_id, latest.get("feedback"))
        loudest = max(reversed(ordered), key=lambda record: _float(record.get("severity")))
        summaries.append(
            GroupSummary(
                group_id=group_id,
                measure=str(latest.get("measure", "")),
                direction=direction,
                opened_at=opened_at,
                last_interval_end=intervals[-1][1],
                intervals=tuple(intervals),
                severity=max(_float(record.get("severity")) for record in ordered),
                observed=sum(_float(record.get("observed")) for record in ordered),
                expected=sum(_float(record.get("expected")) for record in ordered),
                level=str(latest.get("level", "")),
                status=str(latest.get("status", "")),
                alerted=any(record.get("alerted") is True for record in ordered),
                feedback=label if label in FEEDBACK_VALUES else None,
                contributors=contributors,
                evidence=str(loudest["evidence"]) if loudest.get("evidence") in EVIDENCE_KINDS else None,
            )
        )
    return sorted(summaries, key=lambda summary: (summary.opened_at, summary.group_id), reverse=True)


def read_pipeline_windows(path: Path, problems: list[str]) -> list[PipelineWindow]:
    windows: list[PipelineWindow] = []
    for row in _csv_rows(path, problems):
        try:
            start = _parse_time(row.get("window_start", "").replace(" ", "T"))
        except ValueError:
            continue
        passengers = _number(row.get("passengers"))
        if passengers is not None:
            windows.append(PipelineWindow(start, passengers, _number(row.get("expected")), _number(row.get("score"))))
    return windows


def read_pipeline_events(path: Path, problems: list[str]) -> list[PipelineEvent]:
    events: list[PipelineEvent] = []
    for row in _csv_rows(path, problems):
        try:
            start = _parse_time(row.get("start", "").replace(" ", "T"))
            end = _parse_time(row.get("end", "").replace(" ", "T"))
        except ValueError:
            problems.append(f"{path}: event {row.get('event_id')!r} has no readable start/end")
            continue
        events.append(
            PipelineEvent(
                event_id=row.get("event_id", ""),
                start=start,
                end=end,
                windows=row.get("windows", ""),
                peak_score=row.get("peak_score", ""),
                observed=row.get("observed_passengers", row.get("observed", "")),
                expected=row.get("expected_passengers", row.get("expected", "")),
                change_percent=row.get("change_percent", ""),
            )
        )
    return events


def _csv_rows(path: Path, problems: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        problems.append(f"{path}: unreadable ({error})")
        return []


def interval_gap(frequency_minutes: int) -> timedelta:
    return timedelta(minutes=frequency_minutes)
