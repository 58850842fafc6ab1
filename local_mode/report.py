"""What the run found, in words: top anomaly events, detector alerts, where the files are, how long it took."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from local_mode.ml_system import WINDOW, PipelineOutcome, ScoredWindow
from local_mode.streaming_sim import StreamOutcome
from local_mode.taxi_data import KnownAnomaly

TOP_EVENTS = 5
MAX_ALERTS_SHOWN = 20


@dataclass(frozen=True)
class AnomalyEvent:
    """A peak of the score. Window t's vector holds the N windows ending at t, so an unusual window
    raises the scores of the N windows after it: the cause lies in the N windows ending at the peak."""

    peak: ScoredWindow
    matches: KnownAnomaly | None


def top_events(outcome: PipelineOutcome, count: int = TOP_EVENTS) -> list[AnomalyEvent]:
    """The highest-scoring windows, at most one per shingle span (later peaks of one cause are suppressed)."""
    span = WINDOW * outcome.shingle_size
    ranked = sorted((w for w in outcome.scored if w.full_history), key=lambda w: w.score, reverse=True)
    peaks: list[ScoredWindow] = []
    for window in ranked:
        if all(abs(window.window_start - peak.window_start) >= span for peak in peaks):
            peaks.append(window)
        if len(peaks) == count:
            break
    return [_event(peak, span, outcome) for peak in peaks]


def _event(peak: ScoredWindow, span: timedelta, outcome: PipelineOutcome) -> AnomalyEvent:
    cause_start = peak.window_start - span + WINDOW
    matches = next((a for a in outcome.known_anomalies if a.start <= peak.window_start and a.end > cause_start), None)
    return AnomalyEvent(peak=peak, matches=matches)


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
            f"half-hour windows ({prep.train_rows:,} training vectors)"
        )
        if prep.analysis_range is not None:
            lines.append(
                f"  analysis range {prep.analysis_range.describe()}: "
                f"{prep.rows_out_of_range:,} pickups outside it dropped"
            )
    lines.append(
        f"  Top anomalies (score peaks, one per {pipeline.shingle_size * WINDOW.total_seconds() / 3600:g} h span):"
    )
    for rank, event in enumerate(top_events(pipeline), start=1):
        peak = event.peak
        verdict = f"<- injected: {event.matches.label}" if event.matches else ""
        if not pipeline.known_anomalies:
            verdict = ""
        lines.append(
            f"   {rank}. {peak.window_start:%Y-%m-%d %H:%M}  score {peak.score:.3f}  "
            f"passengers {peak.passengers:>5}  {verdict}"
        )
    if pipeline.known_anomalies:
        found = {
            event.matches.label for event in top_events(pipeline, count=len(pipeline.known_anomalies)) if event.matches
        }
        lines.append(
            f"  Injected anomalies among the top {len(pipeline.known_anomalies)} peaks: "
            f"{len(found)} of {len(pipeline.known_anomalies)}"
        )
    lines.append(f"  Scored windows: {pipeline.scores_csv}")
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
    lines.append(f"  Interval CSVs: {streaming.intervals_folder}/intvl_date=.../intvl_hhmm=...")
    lines.append(
        f"  Anomaly records: {streaming.anomalies_folder}/intvl_date=.../intvl_hhmm=.../anomalies.jsonl "
        f"({len(streaming.anomaly_files)} files)"
    )
    return lines
