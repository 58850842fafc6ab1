"""Reading the ScoreData step's output: every `*.out` file batch transform wrote under the prefix."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class ScoredRow:
    window_start: datetime
    passengers: float
    score: float


class ScoresError(ValueError):
    """A transform output line that cannot be read; the message names the file and line."""


def read_scored_rows(folder: Path) -> list[ScoredRow]:
    """Rows of `window_start,passengers,score` (the transform's join + output filter), oldest first."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if not files:
        raise ScoresError(f"no transform output under {folder}")
    rows: list[ScoredRow] = []
    for path in files:
        with path.open(encoding="utf-8", newline="") as lines:
            for number, fields in enumerate(csv.reader(lines), start=1):
                if not fields:
                    continue
                if len(fields) < 3:
                    raise ScoresError(f"{path.name} line {number}: expected window_start,passengers,score")
                try:
                    rows.append(
                        ScoredRow(
                            window_start=datetime.strptime(fields[0], "%Y-%m-%d %H:%M:%S"),
                            passengers=float(fields[1]),
                            score=float(fields[-1]),
                        )
                    )
                except ValueError as error:
                    raise ScoresError(f"{path.name} line {number}: {error}") from error
    rows.sort(key=lambda row: row.window_start)
    return rows
