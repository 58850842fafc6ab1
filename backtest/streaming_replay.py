"""The streaming detector's replay: a series through the detector Lambda's own per-interval code path.

Each row is one interval. For every row the replay does what ``anomaly_detector.logic.detect_interval``
does for an interval once it has the interval's totals: parse the stored state document
(``DetectorState.from_json``), score the interval's totals with ``score_interval`` (which judges and then
learns, carrying the open-anomaly state forward), and serialise the state again (``to_json``) for the
next interval. The series is the only dimension value, so the totals are ``{"series": value}``. Nothing
looks ahead: row *i*'s verdict is computed before row *i + 1* is read.

What the replay leaves out is I/O only: reading the interval's CSV files and the state from S3, and
writing anomaly files, alerts and metrics. Rows may be spaced irregularly (the model works from the
timestamps); the detector Lambda itself sees 5- or 10-minute intervals.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from backtest.detector_api import SeriesDetection

_LAMBDA_FOLDER = str(Path(__file__).resolve().parent.parent / "lambda")
if _LAMBDA_FOLDER not in sys.path:
    sys.path.insert(0, _LAMBDA_FOLDER)

from anomaly_detector.config import DetectorSettings  # noqa: E402 - needs the path above
from anomaly_detector.scoring import DetectorState, score_interval  # noqa: E402
from anomaly_detector.series_model import DEFAULT_MODEL, ModelParams, decide_alerts  # noqa: E402

SERIES_KEY = "series"
DEFAULT_SETTINGS = DetectorSettings()


def detect_series(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    *,
    threshold: float | None = None,
    params: ModelParams = DEFAULT_MODEL,
) -> SeriesDetection:
    """Replay one series (timestamps in order; naive ones are UTC). ``threshold``: severity, default the Lambda's."""
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps for {len(values)} values")
    settings = DEFAULT_SETTINGS
    severity_threshold = settings.anomaly_threshold if threshold is None else threshold
    frequency = settings.frequency_minutes  # a tag of the state document only; the model reads the timestamps
    columns: dict[str, list[object]] = {
        name: []
        for name in (
            "severity",
            "anomalous",
            "ongoing",
            "expected",
            "expected_low",
            "expected_high",
            "direction",
            "evidence",
            "forecaster",
            "status",
        )
    }
    scores: list[float] = []
    flags: list[bool] = []
    document: str | None = None
    for timestamp, value in zip(timestamps, values, strict=True):
        moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        state = DetectorState.from_json(document, frequency, params)
        [verdict] = score_interval(
            state, moment, {SERIES_KEY: float(value)}, severity_threshold, settings.history_length, params
        )
        document = state.to_json()
        scores.append(verdict.score)
        flags.append(verdict.is_anomaly)
        columns["severity"].append(round(verdict.severity, 2))
        columns["anomalous"].append(int(verdict.severity >= severity_threshold))
        columns["ongoing"].append(int(verdict.ongoing))
        columns["expected"].append(_number(verdict.expected))
        columns["expected_low"].append(_number(verdict.expected_low))
        columns["expected_high"].append(_number(verdict.expected_high))
        columns["direction"].append(verdict.direction or "")
        columns["evidence"].append(verdict.evidence or "")
        columns["forecaster"].append(verdict.forecaster or "")
        columns["status"].append(verdict.status)
    return SeriesDetection(
        scores=scores,
        is_anomaly=flags,
        extra_columns=columns,
        decide=partial(decide_on_scores, params=params),  # a partial of a module function pickles
        threshold=severity_threshold / 100.0,
    )


def decide_on_scores(
    row_scores: Sequence[float], score_threshold: float, params: ModelParams = DEFAULT_MODEL
) -> list[bool]:
    """The detector's decisions at another threshold, on the score scale (severity / 100)."""
    return decide_alerts([100.0 * score for score in row_scores], 100.0 * score_threshold, params)


def _number(value: float | None) -> float | str:
    if value is None or not math.isfinite(value):
        return ""
    return float(f"{value:.6g}")
