"""Detector: one `detect_interval` call (the Lambda's whole job for a closed interval) per run.

The store is in memory, so the figure is the detector's own cost: parse the state, aggregate the interval's
CSV, judge every dimension value with its model, write the state back. Every value has a realistic model
state (two days of five-minute intervals with a daily cycle, so the daily profile is in use), and the state
ends right before the scored interval, so nothing is caught up from stored files.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np

from bench.reporting import BenchReport
from bench.runtime import Say, timed

SECTION = "Detector (detect_interval, one closed interval)"
HISTORY_LENGTH = 288  # cdk.json dev: streaming.history_length
LEARNT_INTERVALS = 2 * 288  # two days: every value's daily profile is in use
FREQUENCY_MINUTES = 5
ROWS_PER_VALUE = 5  # records of one dimension value in the interval's CSV
INTERVAL_START = datetime(2026, 11, 25, 19, 15, tzinfo=UTC)


@dataclass
class InMemoryStore:
    """The detector's IntervalStore with the interval CSV and the state held in memory."""

    csv_text: str
    state: str
    written_state: str | None = None
    anomalies: dict[datetime, str] = field(default_factory=dict)

    def read_interval_csvs(self, interval_start: datetime) -> list[str]:
        return [self.csv_text] if interval_start == INTERVAL_START else []

    def read_state(self) -> str | None:
        return self.state

    def write_state(self, body: str) -> None:
        self.written_state = body

    def write_groups(self, interval_start: datetime, body: str) -> str:
        self.anomalies[interval_start] = body
        return f"memory://anomalies/{interval_start:%Y%m%d%H%M}"


class DiscardingPublisher:
    def publish(self, subject: str, message: str) -> None:
        del subject, message


class DiscardingMetrics:
    def put_metrics(
        self,
        values: Mapping[str, float],
        timestamp: datetime,
        *,
        by_measure: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        del values, timestamp, by_measure


def _history_state(dimension_values: list[str], rng: np.random.Generator) -> tuple[str, dict[str, float]]:
    """A state document where every value's model has learnt two days, and each value's next total."""
    from anomaly_detector.config import DetectorSettings
    from anomaly_detector.scoring import DetectorState, score_interval

    step = np.arange(LEARNT_INTERVALS + 1)
    daily = 1 + 0.4 * np.sin(2 * math.pi * step / 288)  # 288 five-minute intervals = one day
    # One model learns the cycle; every value gets a copy scaled to its own level (learning 1,000 models
    # would take longer than the runs measured, and the cost of judging does not depend on the level).
    points = 1000 * daily * rng.normal(1, 0.05, LEARNT_INTERVALS + 1)
    first = INTERVAL_START - LEARNT_INTERVALS * timedelta(minutes=FREQUENCY_MINUTES)
    template = DetectorState(frequency_minutes=FREQUENCY_MINUTES)
    for index in range(LEARNT_INTERVALS):
        moment = first + index * timedelta(minutes=FREQUENCY_MINUTES)
        score_interval(template, moment, {"template": float(points[index])}, 48.0, HISTORY_LENGTH)
    model = template.series["template"]
    # The detector's default metric set (one dimension, one measure): a series per value, and the total.
    state = DetectorState(
        frequency_minutes=FREQUENCY_MINUTES,
        last_interval_start=template.last_interval_start,
        metric_set=DetectorSettings().metric_set.signature,
    )
    current: dict[str, float] = {}
    for value in dimension_values:
        state.series[f"views|marketplace={value}"] = model.copy()
        current[value] = float(points[-1] * rng.normal(1, 0.05))
    state.series["views|marketplace=*"] = model.copy()  # its level differs; judging costs the same
    return state.to_json(), current


def _interval_csv(current: dict[str, float]) -> str:
    out = io.StringIO()
    out.write("marketplace,event_time,views\n")
    for value, total in current.items():
        share = total / ROWS_PER_VALUE
        for row in range(ROWS_PER_VALUE):
            out.write(f"{value},{INTERVAL_START + timedelta(seconds=row * 30):%Y-%m-%d %H:%M:%S},{share}\n")
    return out.getvalue()


def run(report: BenchReport, say: Say, dimension_counts: tuple[int, ...], runs_for: dict[int, int]) -> None:
    # The detector logs JSON lines per interval (powertools): keep the bench's output readable.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from anomaly_detector.config import DetectorSettings
    from anomaly_detector.logic import detect_interval

    settings = DetectorSettings(frequency_minutes=FREQUENCY_MINUTES, history_length=HISTORY_LENGTH)
    rng = np.random.default_rng(5)
    for count in dimension_counts:
        values = [f"m{index:04d}" for index in range(count)]
        state, current = _history_state(values, rng)
        csv_text = _interval_csv(current)
        seconds: list[float] = []
        scored = 0
        for run_number in range(1, runs_for[count] + 1):
            detect = partial(
                detect_interval,
                store=InMemoryStore(csv_text=csv_text, state=state),
                publisher=DiscardingPublisher(),
                metrics=DiscardingMetrics(),
                interval_start=INTERVAL_START,
                settings=settings,
            )
            run_seconds, interval_report = timed(detect)
            seconds.append(run_seconds)
            scored = len(interval_report.scored)
            say(
                f"  detector {count:,} values run {run_number}/{runs_for[count]}: {run_seconds:.3f} s ({scored} scored)"
            )
        label = f"{count:,} dimension values, each with two days learnt"
        report.add(SECTION, label, "time per interval", "s", seconds, note=f"{scored:,} values scored")
        report.add(SECTION, label, "time per dimension value", "ms", [s / count * 1000 for s in seconds])
        report.add(SECTION, label, "state size per dimension value", "bytes", [len(state) / count])
