"""Feedback labels in the backtest: ``--feedback FILE`` marks the rows a person labelled.

FILE is a JSON list of ``{"series": <file path relative to --series>, "start": ts, "end": ts,
"verdict": "not_anomaly"|"anomaly"}`` (both ends inclusive; timestamps ISO 8601, naive = UTC). Each result
CSV then carries a ``feedback`` column: the verdict for rows in a labelled range (the later entry wins where
ranges overlap), empty elsewhere. The labels are shown, not used: the detector's scores do not change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

FEEDBACK_COLUMN = "feedback"
VERDICTS = ("not_anomaly", "anomaly")
FeedbackRanges = Mapping[str, Sequence[tuple[datetime, datetime, str]]]


def load_feedback(path: Path) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """The labelled ranges per series file; a bad entry is an error that names the file and the entry."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read feedback labels ({error})") from None
    if not isinstance(document, list):
        raise ValueError(f'{path}: feedback labels must be a JSON list of {{"series", "start", "end", "verdict"}}')
    ranges: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for position, entry in enumerate(document):
        where = f"{path}: entry {position}"
        if not isinstance(entry, Mapping) or set(entry) != {"series", "start", "end", "verdict"}:
            raise ValueError(f'{where} must have exactly "series", "start", "end" and "verdict", got {entry!r}')
        if entry["verdict"] not in VERDICTS:
            raise ValueError(f"{where}: verdict must be not_anomaly or anomaly, got {entry['verdict']!r}")
        try:
            start, end = _utc(str(entry["start"])), _utc(str(entry["end"]))
        except ValueError:
            raise ValueError(f"{where}: start and end must be ISO 8601 timestamps, got {entry!r}") from None
        if end < start:
            raise ValueError(f"{where}: end {entry['end']} is before start {entry['start']}")
        ranges.setdefault(str(entry["series"]).replace("\\", "/"), []).append((start, end, entry["verdict"]))
    return ranges


def feedback_column(timestamps: Sequence[datetime], ranges: Sequence[tuple[datetime, datetime, str]]) -> list[str]:
    column = [""] * len(timestamps)
    for index, moment in enumerate(timestamps):
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        for start, end, verdict in ranges:
            if start <= moment <= end:
                column[index] = verdict  # later entries win
    return column


def _utc(text: str) -> datetime:
    cleaned = text.strip()
    moment = datetime.fromisoformat(cleaned[:-1] + "+00:00" if cleaned.endswith(("Z", "z")) else cleaned)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
