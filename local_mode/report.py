"""What the run found, in words: anomaly events, injected anomalies found or missed, alerts, files, timings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path

from local_mode.ml_system import PipelineOutcome
from local_mode.streaming_sim import StreamOutcome
from local_mode.taxi_data import KnownAnomaly
from pipeline_evaluation import AnomalyEvent

MAX_EVENTS_SHOWN = 12
MAX_ALERTS_SHOWN = 20


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
    if streaming.anomaly_window:
        start, end = streaming.anomaly_window
        verdict = "DETECTED" if streaming.injected_detected else "NOT detected"
        lines.append(
            f"  Injected: {streaming.anomaly_marketplace} spike {start:%Y-%m-%d %H:%M}-{end:%H:%M} -> {verdict}"
        )
    lines.append(
        f"  Anomalies flagged: {len(streaming.anomalies)} "
        f"({len(streaming.anomalies) - len(streaming.false_anomalies)} in the injected spike, "
        f"{len(streaming.false_anomalies)} elsewhere)"
    )
    lines.append(f"  Detector alerts (SNS messages in AWS): {len(streaming.alerts)}")
    for alert in streaming.alerts[:MAX_ALERTS_SHOWN]:
        lines.append(f"   - {alert.subject}")
        # The message's first lines restate the subject; the "- value: ..." lines are the anomalies.
        lines += [f"       {line}" for line in alert.message.splitlines() if line.startswith("- ")]
    if len(streaming.alerts) > MAX_ALERTS_SHOWN:
        lines.append(f"   ... and {len(streaming.alerts) - MAX_ALERTS_SHOWN} more")
    lines.append(f"  Interval CSVs: {streaming.intervals_folder}/intvl_date=.../intvl_hhmm=.../batch_id=...")
    lines.append(
        f"  Anomaly records: {streaming.anomalies_folder}/intvl_date=.../intvl_hhmm=.../anomalies.jsonl "
        f"({len(streaming.anomaly_files)} files)"
    )
    return lines
