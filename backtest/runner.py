"""Run a detector over series files (in parallel), write its results, and score them the NAB way.

Used by ``python -m backtest`` and by the bench's detection-quality section.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from backtest import detector_api
from backtest.feedback_labels import FEEDBACK_COLUMN, FeedbackRanges, feedback_column
from backtest.nab_scoring import (
    CorpusScore,
    LabelledScores,
    RowValues,
    best_threshold,
    row_values,
    score_corpus,
    score_flags,
    window_rows,
)
from backtest.series_io import BacktestInputError, read_series, write_result


class DetectorUnavailableError(RuntimeError):
    """The detector's replay module is not in this checkout."""


@dataclass(frozen=True)
class FileOutcome:
    name: str
    path: Path
    timestamps: tuple[datetime, ...]
    scores: tuple[float, ...]
    flags: tuple[bool, ...]
    decide: Callable[[Sequence[float], float], Sequence[bool]] | None
    threshold: float | None
    seconds: float
    output: Path | None

    @property
    def rows(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class FileError:
    path: Path
    message: str


@dataclass(frozen=True)
class BacktestRun:
    detector: str
    outcomes: tuple[FileOutcome, ...]
    errors: tuple[FileError, ...]
    wall_seconds: float
    workers: int

    @property
    def rows(self) -> int:
        return sum(outcome.rows for outcome in self.outcomes)

    @property
    def detector_seconds(self) -> float:
        return sum(outcome.seconds for outcome in self.outcomes)


def check_detector(name: str) -> None:
    """Fail early, and clearly, when the detector's replay module is not in this checkout."""
    detectors = detector_api.DETECTORS
    if name not in detectors:
        raise ValueError(f"unknown detector {name!r}; choose from {', '.join(detectors)}")
    module_name = detectors[name].split(":")[0]
    try:
        detector_api.load_detector(name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        path = module_name.replace(".", "/") + ".py"
        raise DetectorUnavailableError(
            f"the {name} detector's replay ({path}) is not in this checkout yet; "
            "it arrives with issue 10 part 3 (the pipeline model)"
        ) from None


def run_backtest(
    detector: str,
    files: Sequence[tuple[Path, str]],
    out: Path | None,
    workers: int | None = None,
    feedback: FeedbackRanges | None = None,
) -> BacktestRun:
    """Replay every file through ``detector``; write ``out/<name>`` for each when ``out`` is given.

    With ``feedback`` (``backtest.feedback_labels``) every result CSV gains a ``feedback`` column.
    """
    check_detector(detector)
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    started = time.perf_counter()
    jobs = [
        (detector, path, name, out, None if feedback is None else tuple(feedback.get(name, ()))) for path, name in files
    ]
    if workers == 1:
        results = [_run_file(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_run_file, *zip(*jobs, strict=True)))
    outcomes = tuple(result for result in results if isinstance(result, FileOutcome))
    errors = tuple(result for result in results if isinstance(result, FileError))
    return BacktestRun(detector, outcomes, errors, time.perf_counter() - started, workers)


def _run_file(
    detector: str,
    path: Path,
    name: str,
    out: Path | None,
    feedback: Sequence[tuple[datetime, datetime, str]] | None = None,
) -> FileOutcome | FileError:
    try:
        series = read_series(path, name)
    except BacktestInputError as error:
        return FileError(path, str(error))
    detect = detector_api.load_detector(detector)
    started = time.process_time()
    try:
        detection = detect(series.timestamps, series.values)
    except ValueError as error:  # the detector's own validation, e.g. of the spacing
        return FileError(path, f"{path}: {error}")
    seconds = time.process_time() - started
    output = None
    if out is not None:
        output = out / name
        extra_columns = dict(detection.extra_columns)
        if feedback is not None:
            extra_columns[FEEDBACK_COLUMN] = feedback_column(series.timestamps, feedback)
        write_result(output, series, detection.scores, detection.is_anomaly, extra_columns)
    return FileOutcome(
        name=name,
        path=path,
        timestamps=series.timestamps,
        scores=tuple(float(score) for score in detection.scores),
        flags=tuple(bool(flag) for flag in detection.is_anomaly),
        decide=detection.decide,
        threshold=detection.threshold,
        seconds=seconds,
        output=output,
    )


# --- Scoring against labels ------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    own: CorpusScore  # the detector's own decisions (is_anomaly)
    best_rule: CorpusScore  # the detector's own decision rule at its best single threshold
    best_scores: CorpusScore  # "score >= threshold" at the best single threshold (how NAB scores published results)
    scored: tuple[str, ...]
    without_labels: tuple[str, ...]  # files the labels do not mention (not scored)
    labels_without_file: tuple[str, ...]


def match_labels(
    names: Sequence[str], labels: Mapping[str, Sequence[tuple[datetime, datetime]]]
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Labels per file name: the same relative path, else the one label key that ends with it."""
    matched: dict[str, list[tuple[datetime, datetime]]] = {}
    for name in names:
        if name in labels:
            matched[name] = list(labels[name])
            continue
        candidates = [key for key in labels if key.endswith("/" + name) or name.endswith("/" + key) or key == name]
        if len(candidates) == 1:
            matched[name] = list(labels[candidates[0]])
    return matched


def evaluate(run: BacktestRun, labels: Mapping[str, Sequence[tuple[datetime, datetime]]]) -> Evaluation:
    by_name = {outcome.name: outcome for outcome in run.outcomes}
    matched = match_labels(list(by_name), labels)
    if not matched:
        raise BacktestInputError("none of the series files is named in the labels file")
    used_keys = {key for name in matched for key in labels if key == name or key.endswith("/" + name)}
    score_files, flag_files, prepared, rules = [], [], [], []
    for name in sorted(matched):
        outcome = by_name[name]
        stamps = tuple(_utc(moment) for moment in outcome.timestamps)
        windows = window_rows(stamps, [(_utc(start), _utc(end)) for start, end in matched[name]])
        score_files.append(LabelledScores(name, np.asarray(outcome.scores), windows, stamps))
        flag_files.append(LabelledScores(name, np.asarray(outcome.flags, dtype=float), windows, stamps))
        prepared.append(row_values(outcome.rows, windows))
        rules.append(outcome.decide)
    own = score_flags(flag_files)
    best_scores = best_threshold(score_files)
    best_rule = best_scores if all(rule is None for rule in rules) else _best_rule(score_files, rules, prepared)
    return Evaluation(
        own=own,
        best_rule=best_rule,
        best_scores=best_scores,
        scored=tuple(sorted(matched)),
        without_labels=tuple(sorted(set(by_name) - set(matched))),
        labels_without_file=tuple(sorted(set(labels) - used_keys)),
    )


def _best_rule(
    files: Sequence[LabelledScores],
    rules: Sequence[Callable[[Sequence[float], float], Sequence[bool]] | None],
    prepared: Sequence[RowValues],
) -> CorpusScore:
    """The single threshold at which the detectors' own rules score best: a grid, then a finer grid around it."""

    def at(threshold: float) -> CorpusScore:
        flagged = []
        for series, rule in zip(files, rules, strict=True):
            scores = series.scores.tolist()
            decisions = rule(scores, threshold) if rule is not None else [score >= threshold for score in scores]
            flagged.append(LabelledScores(series.name, np.asarray(decisions, dtype=float), series.windows))
        return replace(score_corpus(flagged, 0.5, prepared), threshold=threshold)

    def search(candidates: Sequence[float]) -> CorpusScore:
        best: CorpusScore | None = None
        for threshold in sorted(candidates, reverse=True):  # ties go to the higher (more conservative) threshold
            result = at(threshold)
            if best is None or result.normalised > best.normalised + 1e-9:
                best = result
        assert best is not None
        return best

    coarse = search([step / 100 for step in range(1, 101)])
    fine = search([t for t in (coarse.threshold + step / 2000 for step in range(-20, 21)) if 0 < t <= 1])
    best = fine if fine.normalised > coarse.normalised + 1e-9 else coarse
    # Delays in time need the timestamps: score the winner once more with them.
    flagged = []
    for series, rule in zip(files, rules, strict=True):
        scores = series.scores.tolist()
        decisions = rule(scores, best.threshold) if rule is not None else [s >= best.threshold for s in scores]
        flagged.append(
            LabelledScores(series.name, np.asarray(decisions, dtype=float), series.windows, series.timestamps)
        )
    return replace(score_corpus(flagged, 0.5, prepared), threshold=best.threshold)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_delay(seconds: float | None, rows: float | None) -> str:
    if seconds is None or rows is None or not math.isfinite(seconds):
        return "n/a"
    minutes = round(seconds / 60)
    text = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    return f"{text} ({rows:g} rows)"
