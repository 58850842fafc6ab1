"""PNG charts of the results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from local_mode.ml_system import PipelineOutcome
from local_mode.streaming_sim import StreamOutcome

INJECTED_COLOR = "#f4a261"
ALERT_COLOR = "#d62828"


def draw_all(pipeline: PipelineOutcome | None, streaming: StreamOutcome | None, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if pipeline is not None and pipeline.scored:
        written.append(draw_pipeline(pipeline, folder / "pipeline_scores.png"))
    if streaming is not None and streaming.interval_sums:
        written.append(draw_streaming(streaming, folder / "streaming_marketplaces.png"))
    return written


def draw_pipeline(pipeline: PipelineOutcome, path: Path) -> Path:
    figure = pipeline_figure(pipeline)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def pipeline_figure(pipeline: PipelineOutcome) -> Figure:
    """Passengers and what was expected of them, the score against the cut-off, and the anomaly events."""
    windows = pipeline.scored
    times = [w.window_start for w in windows]
    evaluation = pipeline.evaluation
    events = evaluation.events if evaluation else ()
    figure, (passengers_axis, score_axis) = plt.subplots(
        2, 1, figsize=(14, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    passengers_axis.plot(
        times, [w.passengers for w in windows], color="#264653", linewidth=0.9, label="passengers per 30 min"
    )
    passengers_axis.plot(
        times,
        [w.expected for w in windows],
        color="#8d99ae",
        linewidth=0.8,
        linestyle="--",
        label="expected (weekly pattern)",
    )
    score_axis.plot(times, [w.score for w in windows], color="#2a9d8f", linewidth=0.9, label="RCF anomaly score")
    if evaluation is not None:
        score_axis.axhline(
            evaluation.cutoff.value, color=ALERT_COLOR, linestyle=":", linewidth=1.0, label="cut-off (from the run)"
        )
    for index, anomaly in enumerate(pipeline.known_anomalies):
        passengers_axis.axvspan(
            anomaly.start,
            anomaly.end,
            color=INJECTED_COLOR,
            alpha=0.35,  # type: ignore[arg-type]
            label=None if index else "injected anomaly",
        )
        passengers_axis.annotate(
            anomaly.label,
            (anomaly.start, 1.0),
            xycoords=("data", "axes fraction"),  # type: ignore[arg-type]
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
            color="#9c4a00",
        )
    by_start = {w.window_start: w for w in windows}
    for index, event in enumerate(events):
        for axis in (passengers_axis, score_axis):
            axis.axvspan(
                event.start,
                event.end,
                color=ALERT_COLOR,
                alpha=0.18,  # type: ignore[arg-type]
                label="anomaly event" if index == 0 and axis is passengers_axis else None,
            )
        peak = by_start[event.peak_window]
        passengers_axis.scatter([peak.window_start], [peak.passengers], color=ALERT_COLOR, zorder=5, s=30)  # type: ignore[arg-type]
        score_axis.scatter([peak.window_start], [peak.score], color=ALERT_COLOR, zorder=5, s=30)  # type: ignore[arg-type]
        score_axis.annotate(
            f"#{event.event_id}",
            (peak.window_start, peak.score),
            xytext=(4, 4),  # type: ignore[arg-type]
            textcoords="offset points",
            fontsize=8,
            color=ALERT_COLOR,
        )
    found = f"{len(events)} anomaly event{'s' if len(events) != 1 else ''}" if events else "no anomaly events"
    passengers_axis.set_title(f"Taxi passengers per half hour, scored by the pipeline's Random Cut Forest: {found}")
    passengers_axis.set_ylabel("passengers")
    score_axis.set_ylabel("anomaly score")
    passengers_axis.legend(loc="upper left", fontsize=8)
    score_axis.legend(loc="upper left", fontsize=8)
    for axis in (passengers_axis, score_axis):
        axis.grid(alpha=0.3)
    # Days apart on a month; an automatic locator keeps a longer range readable too.
    days = max(1.0, (times[-1] - times[0]).total_seconds() / 86400) if times else 1.0
    if days <= 62:
        score_axis.xaxis.set_major_locator(mdates.DayLocator(interval=2))
        score_axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    else:
        locator = mdates.AutoDateLocator()
        score_axis.xaxis.set_major_locator(locator)
        score_axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    score_axis.set_xlabel("window start (UTC)")
    figure.tight_layout()
    return figure


def draw_streaming(streaming: StreamOutcome, path: Path) -> Path:
    figure = streaming_figure(streaming)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def streaming_figure(streaming: StreamOutcome) -> Figure:
    marketplaces = list(streaming.interval_sums)
    columns = 2
    rows = (len(marketplaces) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(14, 2.6 * rows), sharex=True, squeeze=False)
    alerts_by_marketplace: dict[str, list[tuple[datetime, float]]] = {}
    for anomaly in streaming.anomalies:
        alerts_by_marketplace.setdefault(anomaly.marketplace, []).append(
            (anomaly.interval_start, anomaly.verdict.value)
        )
    for axis, marketplace in zip(axes.flat, marketplaces, strict=False):
        series = sorted(streaming.interval_sums[marketplace].items())
        axis.plot([t for t, _ in series], [v for _, v in series], color="#264653", linewidth=0.9)
        spans = streaming.injected_spans(streaming.charted_measure, marketplace)
        for number, span in enumerate(spans):
            label = "injected anomaly" if number == 0 else None
            axis.axvspan(*span, color=INJECTED_COLOR, alpha=0.45, label=label)  # type: ignore[arg-type]
        alerts = alerts_by_marketplace.get(marketplace, [])
        if alerts:
            axis.scatter(
                [start for start, _ in alerts],
                [value for _, value in alerts],
                color=ALERT_COLOR,
                s=22,
                zorder=5,  # type: ignore[arg-type]
                label=f"detected ({len(alerts)})",
            )
        axis.set_title(f"marketplace {marketplace}", fontsize=10)
        axis.set_ylabel(f"views per {streaming.frequency_minutes} min")
        axis.grid(alpha=0.3)
        if alerts or spans:
            axis.legend(loc="upper left", fontsize=8)
        axis.xaxis.set_major_locator(mdates.HourLocator(byhour=(0, 12)))
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d\n%H:%M"))
    for axis in list(axes.flat)[len(marketplaces) :]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("interval start (UTC)")
    figure.suptitle(
        f"Streaming metrics: views per {streaming.frequency_minutes}-minute interval and marketplace (times in UTC), "
        "with detector alerts",
        fontsize=12,
    )
    figure.tight_layout()
    return figure
