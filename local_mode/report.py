"""What the run found, in words: anomaly events, injected anomalies found or missed, alerts, files, timings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from local_mode.ml_system import PipelineOutcome
from local_mode.streaming_sim import InjectedAnomaly, StreamOutcome, group_matches
from local_mode.taxi_data import KnownAnomaly
from pipeline_evaluation import AnomalyEvent

MAX_EVENTS_SHOWN = 12
MAX_ALERTS_SHOWN = 20
MAX_GROUPS_SHOWN = 20


@dataclass(frozen=True)
class InjectedVerdict:
    """An injected anomaly and the events that overlap it (none: missed)."""

    anomaly: KnownAnomaly
    events: tuple[AnomalyEvent, ...]

    @property
    def found(self) -> bool:
        return bool(self.events)


def injected_verdicts(pipeline: PipelineOutcome) -> list[InjectedVerdict]:
    events = pipeline.evaluation.events if pipeline.evaluation else ()
    return [
        InjectedVerdict(anomaly, tuple(event for event in events if event.overlaps(anomaly.start, anomaly.end)))
        for anomaly in pipeline.known_anomalies
    ]


def false_events(pipeline: PipelineOutcome) -> list[AnomalyEvent]:
    """Events that overlap no injected anomaly (only meaningful for generated data)."""
    events = pipeline.evaluation.events if pipeline.evaluation else ()
    return [
        event
        for event in events
        if not any(event.overlaps(anomaly.start, anomaly.end) for anomaly in pipeline.known_anomalies)
    ]


def describe_event(event: AnomalyEvent) -> str:
    """One line: when, how long, the peak, and observed vs expected passengers."""
    end = event.end
    ends_same_day = end.date() == event.start.date() or (end - event.start < timedelta(days=1) and end.time() == time())
    if ends_same_day:
        span = f"{event.start:%a %Y-%m-%d %H:%M}-{end:%H:%M}"
    else:
        span = f"{event.start:%a %Y-%m-%d %H:%M}-{end:%a %m-%d %H:%M}"
    change = event.change
    versus = f"{event.observed:,.0f} passengers vs {event.expected:,.0f} expected"
    if change is not None:
        versus += f" ({100 * change:+.0f}%)"
    return (
        f"{span} ({event.windows} windows), peak {event.peak_window:%H:%M} score {event.peak_score:.3f} "
        f"({event.peak_observed:,.0f} vs {event.peak_expected:,.0f}): {versus}"
    )


def summary(
    pipeline: PipelineOutcome | None,
    streaming: StreamOutcome | None,
    charts: list[Path],
    timings: dict[str, float],
    out: Path,
) -> str:
    lines = ["", "=" * 78, "LOCAL MODE SUMMARY", "=" * 78]
    if pipeline is not None:
        lines += _pipeline_lines(pipeline, out)
    if streaming is not None:
        lines += _streaming_lines(streaming)
    if charts:
        lines.append("Charts:")
        lines += [f"  {path}" for path in charts]
    lines.append("Time per stage:")
    stage_timings = dict(timings)
    if pipeline is not None:
        stage_timings |= {f"pipeline: {name.strip()}": seconds for name, seconds in pipeline.timings.items()}
    if streaming is not None:
        stage_timings |= {f"streaming: {name}": seconds for name, seconds in streaming.timings.items()}
    lines += [f"  {name:<42} {seconds:6.1f}s" for name, seconds in stage_timings.items()]
    lines.append("=" * 78)
    return "\n".join(lines)


def _pipeline_lines(pipeline: PipelineOutcome, out: Path) -> list[str]:
    execution = pipeline.execution
    lines = [f"ML pipeline: {execution.status}  ({execution.arn})"]
    for step in execution.steps:
        if step.status != "NotStarted":
            lines.append(f"  {step.name:<12} {step.step_type:<10} {step.status:<10} {step.seconds:6.1f}s")
    failed = execution.failed_step
    if failed is not None:
        lines.append(f"  FailureReason ({failed.name}): {failed.failure_reason}")
        lines.append(f"  Execution record: {out / 'pipeline' / 'execution.json'}")
        return lines
    if pipeline.prep is not None:
        prep = pipeline.prep
        lines.append(
            f"  rows in: {prep.rows_read:,} trips ({prep.rows_dropped:,} dropped)  ->  windows out: {prep.windows:,} "
            f"half-hour windows ({prep.train_rows:,} training vectors, {prep.seasonality} pattern)"
        )
        if prep.analysis_range is not None:
            lines.append(
                f"  analysis range {prep.analysis_range.describe()}: "
                f"{prep.rows_out_of_range:,} pickups outside it dropped"
            )
    evaluation = pipeline.evaluation
    if evaluation is None:
        return lines
    lines.append(f"  {evaluation.cutoff.describe()}")
    events = evaluation.events
    if not events:
        lines.append("  Anomaly events: none (no window scored at or above the cut-off)")
    else:
        lines.append(f"  Anomaly events: {len(events)}")
        for event in events[:MAX_EVENTS_SHOWN]:
            lines.append(f"   #{event.event_id:<2} {describe_event(event)}")
        if len(events) > MAX_EVENTS_SHOWN:
            lines.append(f"   ... and {len(events) - MAX_EVENTS_SHOWN} more (see the events file)")
    if pipeline.known_anomalies:
        verdicts = injected_verdicts(pipeline)
        found = sum(verdict.found for verdict in verdicts)
        lines.append(f"  Injected anomalies found: {found} of {len(verdicts)}")
        for verdict in verdicts:
            if verdict.found:
                ids = ", ".join(f"#{event.event_id}" for event in verdict.events)
                lines.append(f"   FOUND   {verdict.anomaly.describe()}  <- event {ids}")
            else:
                lines.append(f"   MISSED  {verdict.anomaly.describe()}")
        unexpected = false_events(pipeline)
        lines.append(
            f"  False events (overlapping no injected anomaly): {len(unexpected)}"
            + (f" ({', '.join(f'#{event.event_id}' for event in unexpected)})" if unexpected else "")
        )
    lines.append(f"  Scored windows: {pipeline.scores_csv}")
    lines.append(f"  Anomaly events: {pipeline.events_csv}")
    return lines


def _streaming_lines(streaming: StreamOutcome) -> list[str]:
    hours = (streaming.end - streaming.start).total_seconds() / 3600
    if streaming.stopped_early:
        return [
            f"Streaming: stopped after {streaming.batches} micro-batch(es) ({streaming.records:,} records) because "
            "the ML pipeline failed; `--only streaming` runs it alone"
        ]
    lines = [
        f"Streaming: {hours:g} simulated hours, {streaming.records:,} records in {streaming.batches} micro-batches "
        f"-> {streaming.good:,} good, {streaming.quarantined} quarantined; {streaming.intervals} intervals scored "
        f"by the detector ({streaming.detector_rows_read:,} rows read)",
    ]
    if streaming.first_fully_scored is not None:
        lines.append(f"  Detector warm-up: every marketplace scored from {streaming.first_fully_scored:%Y-%m-%d %H:%M}")
    lines += group_lines(streaming.groups, streaming.injected)
    lines.append(f"  Detector alerts (SNS messages in AWS): {len(streaming.alerts)}")
    for alert in streaming.alerts[:MAX_ALERTS_SHOWN]:
        lines.append(f"   - {alert.subject}")
    if len(streaming.alerts) > MAX_ALERTS_SHOWN:
        lines.append(f"   ... and {len(streaming.alerts) - MAX_ALERTS_SHOWN} more")
    lines.append(f"  Interval CSVs: {streaming.intervals_folder}/intvl_date=.../intvl_hhmm=.../batch_id=...")
    lines.append(
        f"  Anomaly group records: {streaming.anomalies_folder}/intvl_date=.../intvl_hhmm=.../groups.jsonl "
        f"({len(streaming.anomaly_files)} files)"
    )
    return lines


def group_lines(records: Sequence[Mapping[str, Any]], injected: Sequence[InjectedAnomaly]) -> list[str]:
    """Each anomaly group once (its records merged over its intervals), and each injected anomaly's verdict.

    A group line: measure, direction, peak severity, when, the root cause at its most severe interval, and
    the injected anomaly it matches (measure, overlapping time, top contributor in the injected combination).
    """
    from anomaly_detector.groups import root_cause

    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_id.setdefault(record["group_id"], []).append(record)
    lines = [f"  Anomaly groups: {len(by_id)}"]
    matched: set[int] = set()
    unmatched = 0
    for shown, (group_id, group_records) in enumerate(by_id.items()):
        peak = max(group_records, key=lambda record: float(record["severity"]))
        matches = [i for i, anomaly in enumerate(injected) if any(group_matches(r, anomaly) for r in group_records)]
        matched.update(matches)
        unmatched += not matches
        if shown >= MAX_GROUPS_SHOWN:
            continue
        first, last = group_records[0]["interval_start"], group_records[-1]["interval_end"]
        verdict = f"matches injected {injected[matches[0]].describe()}" if matches else "no injected anomaly"
        lines.append(
            f"   {group_id}: {peak['measure']} {peak['direction']}, severity {float(peak['severity']):.0f}, "
            f"{first[:16].replace('T', ' ')}-{last[11:16]} UTC ({len(group_records)} intervals), "
            f"{root_cause(peak)}, level {peak['level']} -> {verdict}"
        )
    if len(by_id) > MAX_GROUPS_SHOWN:
        lines.append(f"   ... and {len(by_id) - MAX_GROUPS_SHOWN} more (see the groups.jsonl files)")
    if injected:
        lines.append(
            f"  Injected anomalies found by a group with the right root cause: {len(matched)} of {len(injected)}"
        )
        for index, anomaly in enumerate(injected):
            lines.append(f"   {'DETECTED    ' if index in matched else 'NOT DETECTED'}  {anomaly.describe()}")
    lines.append(f"  Groups matching no injected anomaly: {unmatched}")
    return lines
