"""The batch transform's output, read back into windows: one JSON object per line.

The prep job writes each scoring record as JSON Lines with the window and its model input, and the
transform joins Random Cut Forest's answer to it (JoinSource=Input) and keeps the window fields plus the
answer (OutputFilter). So each output line is

    {"window_start": "2025-03-18 08:00:00", "passengers": 212, "expected": 468.5, "SageMakerOutput": {"score": 2.31}}

SageMaker documents both halves: for JSON Lines input "SageMaker adds the transformed data to the input
JSON object in an attribute called SageMakerOutput" (DataProcessing.JoinSource), and RCF's JSON Lines
response per record is ``{"score": 0.02}`` (RCF Response Formats). ``window_start`` is UTC, in the
prep job's ``yyyy-MM-dd HH:mm:ss`` format.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

WINDOW_START_FIELD = "window_start"
OBSERVED_FIELD = "passengers"
EXPECTED_FIELD = "expected"
TRANSFORM_OUTPUT_FIELD = "SageMakerOutput"  # reserved by batch transform for the joined answer
SCORE_FIELD = "score"
WINDOW_START_FORMAT = "%Y-%m-%d %H:%M:%S"


class TransformOutputError(ValueError):
    """A transform output line is not a scored window; the message names the line."""


@dataclass(frozen=True)
class ScoredWindows:
    """Columns of the scored windows, sorted by window start."""

    window_starts: tuple[datetime, ...]
    observed: tuple[float, ...]
    expected: tuple[float, ...]
    scores: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.window_starts)


def _number(record: dict[str, object], field: str, where: str) -> float:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TransformOutputError(f"{where}: {field!r} must be a finite number, got {value!r}")
    return float(value)


def parse_window_start(text: str) -> datetime:
    return datetime.strptime(text, WINDOW_START_FORMAT).replace(tzinfo=UTC)


def read_transform_output(lines: Iterable[str], *, source: str = "transform output") -> ScoredWindows:
    """Parse the joined JSON Lines (blank lines skipped) into scored windows in time order."""
    rows: list[tuple[datetime, float, float, float]] = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {line_number}"
        try:
            record = json.loads(line)
        except ValueError as error:
            raise TransformOutputError(f"{where} is not JSON: {error}") from None
        if not isinstance(record, dict):
            raise TransformOutputError(f"{where} is not a JSON object")
        answer = record.get(TRANSFORM_OUTPUT_FIELD)
        if not isinstance(answer, dict):
            raise TransformOutputError(f"{where} has no {TRANSFORM_OUTPUT_FIELD!r} object (was JoinSource Input?)")
        window_start = record.get(WINDOW_START_FIELD)
        if not isinstance(window_start, str):
            raise TransformOutputError(f"{where} has no {WINDOW_START_FIELD!r} string")
        try:
            start = parse_window_start(window_start)
        except ValueError:
            raise TransformOutputError(
                f"{where}: {WINDOW_START_FIELD} {window_start!r} is not yyyy-MM-dd HH:mm:ss"
            ) from None
        rows.append(
            (
                start,
                _number(record, OBSERVED_FIELD, where),
                _number(record, EXPECTED_FIELD, where),
                _number(answer, SCORE_FIELD, f"{where} {TRANSFORM_OUTPUT_FIELD}"),
            )
        )
    rows.sort(key=lambda row: row[0])
    for previous, current in itertools.pairwise(rows):
        if previous[0] == current[0]:
            raise TransformOutputError(f"{source}: window {current[0]:%Y-%m-%d %H:%M:%S} appears twice")
    return ScoredWindows(
        window_starts=tuple(row[0] for row in rows),
        observed=tuple(row[1] for row in rows),
        expected=tuple(row[2] for row in rows),
        scores=tuple(row[3] for row in rows),
    )
