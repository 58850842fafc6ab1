"""The pipeline's model replayed on any ``timestamp,value`` series: its features, its forest, its decisions.

What the pipeline does with a month of taxi windows, done with one series at its own spacing:

1. ``glue_scripts.features.window_features.series_features``: the prep job's features (the same function; the
   series' spacing and span decide its daily/weekly slots, as they do for half hours).
2. Random Cut Forest trained on every row of the series, as the pipeline trains on every window, with the
   pipeline's hyperparameters (``app_config.PipelineConfig`` defaults, which ``cdk.json`` uses) and scored
   on every row: ``local_mode.rcf_model``, the local mode's emulation of SageMaker's built-in RCF (krcf).
3. ``pipeline_evaluation.evaluate_windows``: the run's cut-off, flags and events.

One decision per anomaly (``pipeline_evaluation.alerts``): ``is_anomaly`` is 1 at the first flagged window
of each anomaly event, the pipeline's own decision (an event is declared where its score first reaches
the run's cut-off); ``score`` is the alert score, the relative score (0.5 at the cut-off, the same footing on
every series) where it is the highest of the day before it, else 0, so that a threshold sweep judges the
same one-decision-per-anomaly logic. Extra columns: ``expected``, ``rcf_score`` (the forest's raw score),
``relative_score``, ``is_flagged`` (score at or above the cut-off) and ``event_id`` (the anomaly event
the row belongs to, empty for none).
Not causal: like the pipeline, the model sees the whole series before scoring it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from app_config import PipelineConfig
from backtest.detector_api import SeriesDetection
from glue_scripts.features.window_features import FEATURE_DIM, series_features
from local_mode.rcf_model import RcfHyperparameters, train_forest
from pipeline_evaluation import evaluate_windows


def pipeline_hyperparameters(config: PipelineConfig | None = None) -> RcfHyperparameters:
    config = config or PipelineConfig()
    return RcfHyperparameters(
        feature_dim=FEATURE_DIM, num_trees=config.num_trees, num_samples_per_tree=config.num_samples_per_tree
    )


def detect_series(
    timestamps: Sequence[datetime], values: Sequence[float], *, config: PipelineConfig | None = None
) -> SeriesDetection:
    """Score one series (timestamps strictly increasing, timezone-aware or all naive) the pipeline's way."""
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps for {len(values)} values")
    if not timestamps:
        return SeriesDetection(scores=(), is_anomaly=(), extra_columns={})
    features = series_features([moment.timestamp() for moment in timestamps], values)
    forest = train_forest(features.vectors, pipeline_hyperparameters(config))
    raw_scores = [float(forest.score(point)) for point in features.vectors]
    evaluation = evaluate_windows(
        list(timestamps), [float(value) for value in values], features.expected.tolist(), raw_scores
    )
    return SeriesDetection(
        scores=evaluation.alert_scores,
        is_anomaly=evaluation.onsets,
        extra_columns={
            "expected": [round(float(value), 6) for value in np.asarray(features.expected)],
            "rcf_score": [round(score, 6) for score in raw_scores],
            "relative_score": [round(score, 6) for score in evaluation.relative_scores],
            "is_flagged": [int(flag) for flag in evaluation.flags],
            "event_id": ["" if event_id is None else event_id for event_id in evaluation.event_ids],
        },
    )
