"""The Numenta Anomaly Benchmark's standard-profile score, implemented from its published rules.

The rules (NAB, numenta/NAB, MIT licence; restated in the shared benchmark's README):

- A *detection* is a row whose anomaly score is at or above the threshold. The first
  ``min(floor(0.15 * n), 750)`` rows of a file are its probationary period and are never scored.
- Inside a labelled window (rows ``L..R``, width ``W = R - L + 1``) a detection at row ``i`` has the
  relative position ``y = -(R - i + 1) / W`` and is worth ``A_TP * sigma(y) / sigma(-1)``, with
  ``sigma(y) = 2 / (1 + exp(5 y)) - 1``. Only the earliest detection of a window counts; a window
  without one costs ``A_FN``.
- A detection outside every window costs ``A_FP * |sigma(y)|`` with ``y = (i - R_prev) / (W_prev - 1)``
  measured from the previous window's right edge; ``sigma = -1`` (the full cost) when ``y > 3`` or when no
  window precedes it.
- raw = the sum over all files; normalised = ``100 * (raw - null) / (perfect - null)`` where
  ``null = -A_FN * windows`` (detect nothing) and ``perfect = A_TP * windows``.
- NAB publishes each detector at the single threshold, shared by all files, that maximises the total.

Everything here is pure: callers load files and labels and pass arrays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median

import numpy as np

# The standard application profile's weights.
A_TP = 1.0
A_FP = 0.11
A_FN = 1.0
PROBATIONARY_FRACTION = 0.15
PROBATIONARY_MAX_ROWS = 750  # 0.15 * 5000: NAB caps the probationary period for long files


def sigma(y: float) -> float:
    """NAB's scaled sigmoid: +1 far before a window's end, 0 at its right edge, -1 far after it."""
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


_SIGMA_LEFT_EDGE = sigma(-1.0)


def probationary_rows(row_count: int) -> int:
    return min(math.floor(PROBATIONARY_FRACTION * row_count), PROBATIONARY_MAX_ROWS)


@dataclass(frozen=True)
class LabelledScores:
    """One file's anomaly scores (one per row, in time order) and its labelled windows as inclusive row ranges."""

    name: str
    scores: np.ndarray
    windows: tuple[tuple[int, int], ...]
    timestamps: tuple[datetime, ...] | None = None  # for detection delays in time; optional

    def __post_init__(self) -> None:
        previous_right = -1
        for left, right in self.windows:
            if not 0 <= left <= right < len(self.scores):
                raise ValueError(f"{self.name}: window rows {left}..{right} outside 0..{len(self.scores) - 1}")
            if left <= previous_right:
                raise ValueError(f"{self.name}: windows overlap or are out of order at rows {left}..{right}")
            previous_right = right
        if self.timestamps is not None and len(self.timestamps) != len(self.scores):
            raise ValueError(f"{self.name}: {len(self.timestamps)} timestamps for {len(self.scores)} scores")


@dataclass(frozen=True)
class RowValues:
    """What a detection at each row is worth: its window (or -1) and its TP value or FP cost."""

    window: np.ndarray  # int: index into windows, -1 outside every window
    true_positive: np.ndarray  # A_TP * sigma(y) / sigma(-1) inside a window, 0 outside
    false_positive_cost: np.ndarray  # A_FP * |sigma(y)| outside windows, 0 inside
    scored: np.ndarray  # bool: False in the probationary period


def row_values(row_count: int, windows: Sequence[tuple[int, int]]) -> RowValues:
    window = np.full(row_count, -1, dtype=int)
    true_positive = np.zeros(row_count)
    false_positive_cost = np.full(row_count, A_FP)  # no window before: the full cost
    for index, (left, right) in enumerate(windows):
        width = right - left + 1
        rows = np.arange(left, right + 1)
        window[rows] = index
        positions = -(right - rows + 1) / width
        true_positive[rows] = A_TP * (2.0 / (1.0 + np.exp(5.0 * positions)) - 1.0) / _SIGMA_LEFT_EDGE
        false_positive_cost[rows] = 0.0
        following_end = windows[index + 1][0] if index + 1 < len(windows) else row_count
        after = np.arange(right + 1, following_end)
        if len(after):
            distance = (after - right) / max(width - 1, 1)
            value = np.where(distance > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(distance, 3.0))) - 1.0)
            false_positive_cost[after] = A_FP * np.abs(value)
    scored = np.arange(row_count) >= probationary_rows(row_count)
    return RowValues(window, true_positive, false_positive_cost, scored)


@dataclass(frozen=True)
class FileResult:
    name: str
    raw: float
    windows: int
    detected_windows: int
    false_positives: int
    delays_rows: tuple[int, ...]  # per detected window: rows from its left edge to the first detection
    delays_seconds: tuple[float, ...]  # the same in time, when timestamps were given


@dataclass(frozen=True)
class CorpusScore:
    threshold: float
    raw: float
    normalised: float
    windows: int
    detected_windows: int
    false_positives: int
    median_delay_rows: float | None
    median_delay_seconds: float | None
    files: tuple[FileResult, ...]


def score_file(series: LabelledScores, threshold: float, values: RowValues | None = None) -> FileResult:
    """``values``: the file's ``row_values``, when the caller scores the same file many times."""
    values = values if values is not None else row_values(len(series.scores), series.windows)
    detections = values.scored & (np.asarray(series.scores, dtype=float) >= threshold)
    raw = 0.0
    delays_rows: list[int] = []
    delays_seconds: list[float] = []
    for index, (left, _right) in enumerate(series.windows):
        hits = np.flatnonzero(detections & (values.window == index))
        if len(hits) == 0:
            raw -= A_FN
            continue
        first = int(hits[0])
        raw += float(values.true_positive[first])
        delays_rows.append(first - left)
        if series.timestamps is not None:
            delays_seconds.append((series.timestamps[first] - series.timestamps[left]).total_seconds())
    outside = detections & (values.window < 0)
    raw -= float(values.false_positive_cost[outside].sum())
    return FileResult(
        name=series.name,
        raw=raw,
        windows=len(series.windows),
        detected_windows=len(delays_rows),
        false_positives=int(np.count_nonzero(outside)),
        delays_rows=tuple(delays_rows),
        delays_seconds=tuple(delays_seconds),
    )


def normalise(raw: float, windows: int) -> float:
    null, perfect = -A_FN * windows, A_TP * windows
    return 100.0 * (raw - null) / (perfect - null) if windows else 0.0


def score_corpus(
    files: Iterable[LabelledScores], threshold: float, values: Sequence[RowValues] | None = None
) -> CorpusScore:
    """``values``: each file's ``row_values`` (same order), when the caller scores the same files many times."""
    files = list(files)
    results = tuple(
        score_file(series, threshold, values[index] if values is not None else None)
        for index, series in enumerate(files)
    )
    windows = sum(result.windows for result in results)
    raw = sum(result.raw for result in results)
    delays_rows = [delay for result in results for delay in result.delays_rows]
    delays_seconds = [delay for result in results for delay in result.delays_seconds]
    return CorpusScore(
        threshold=threshold,
        raw=raw,
        normalised=normalise(raw, windows),
        windows=windows,
        detected_windows=sum(result.detected_windows for result in results),
        false_positives=sum(result.false_positives for result in results),
        median_delay_rows=float(median(delays_rows)) if delays_rows else None,
        median_delay_seconds=float(median(delays_seconds)) if delays_seconds else None,
        files=results,
    )


def score_flags(files: Iterable[LabelledScores]) -> CorpusScore:
    """Score a detector's own decisions: pass 0/1 flags as the scores (a detection is a 1)."""
    return score_corpus(files, 0.5)


def best_threshold(files: Sequence[LabelledScores]) -> CorpusScore:
    """The corpus score at the single threshold that maximises it (NAB's published figure).

    Sweeps every distinct score once, highest first, adding each row's effect on the total; ties are
    resolved in favour of the higher threshold, so the answer is the most conservative best one.
    """
    windows_total = sum(len(series.windows) for series in files)
    scores: list[np.ndarray] = []
    window_ids: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    true_positive: list[np.ndarray] = []
    false_positive_cost: list[np.ndarray] = []
    window_offset = 0
    for series in files:
        values = row_values(len(series.scores), series.windows)
        keep = np.flatnonzero(values.scored)
        scores.append(np.asarray(series.scores, dtype=float)[keep])
        window_ids.append(np.where(values.window[keep] >= 0, values.window[keep] + window_offset, -1))
        rows.append(keep)
        true_positive.append(values.true_positive[keep])
        false_positive_cost.append(values.false_positive_cost[keep])
        window_offset += len(series.windows)
    if not scores:
        raise ValueError("no files to score")
    all_scores = np.concatenate(scores)
    all_windows = np.concatenate(window_ids)
    all_rows = np.concatenate(rows)
    all_tp = np.concatenate(true_positive)
    all_fp = np.concatenate(false_positive_cost)
    order = np.argsort(-all_scores, kind="stable")

    total = -A_FN * windows_total
    best_total, best_score_threshold = total, math.inf
    earliest_row = np.full(windows_total, np.iinfo(np.int64).max, dtype=np.int64)
    earliest_value = np.zeros(windows_total)
    position = 0
    while position < len(order):
        current = all_scores[order[position]]
        while position < len(order) and all_scores[order[position]] == current:
            row = order[position]
            window = all_windows[row]
            if window < 0:
                total -= all_fp[row]
            elif all_rows[row] < earliest_row[window]:
                if earliest_row[window] == np.iinfo(np.int64).max:
                    total += A_FN  # the window is no longer missed
                total += all_tp[row] - earliest_value[window]
                earliest_row[window], earliest_value[window] = all_rows[row], all_tp[row]
            position += 1
        if total > best_total + 1e-12:
            best_total, best_score_threshold = total, float(current)
    return score_corpus(files, best_score_threshold)


# --- Labels -------------------------------------------------------------------------------------


def parse_timestamp(text: str) -> datetime:
    """NAB's timestamps: ``YYYY-MM-DD HH:MM:SS`` in the data, with ``.ffffff`` in labels.json."""
    return datetime.fromisoformat(text.strip())


def load_labels(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """Read a NAB ``labels.json``: ``{"<relative path>": [[start, end], ...]}``, both ends inclusive."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read labels ({error})") from error
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: labels must be a JSON object of file path -> list of [start, end]")
    labels: dict[str, list[tuple[datetime, datetime]]] = {}
    for name, windows in document.items():
        try:
            labels[str(name)] = sorted((parse_timestamp(start), parse_timestamp(end)) for start, end in windows)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: windows of {name!r} must be [[start, end], ...] timestamps ({error})") from error
    return labels


def window_rows(
    timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]]
) -> tuple[tuple[int, int], ...]:
    """Inclusive row ranges of time windows: the rows whose timestamp lies in ``[start, end]``.

    Windows that contain no row are dropped (they cannot be detected or missed in this file).
    """
    stamps = np.asarray([t.timestamp() for t in timestamps])
    ranges = []
    for start, end in windows:
        left = int(np.searchsorted(stamps, start.timestamp(), side="left"))
        right = int(np.searchsorted(stamps, end.timestamp(), side="right")) - 1
        if left <= right:
            ranges.append((left, right))
    return tuple(ranges)
