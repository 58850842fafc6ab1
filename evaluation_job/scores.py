"""Reading the ScoreData step's output: every file batch transform wrote under the scores prefix.

The lines are parsed by `pipeline_evaluation.read_transform_output`, the one reader of the transform's
JSON Lines (its module docstring quotes the documented format). This module only walks the files, so
that an error names the file, and puts the windows of all files into one series in time order.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from pipeline_evaluation import ScoredWindows, TransformOutputError, read_transform_output


class ScoresError(ValueError):
    """The transform output cannot be evaluated; the message names the file (and line)."""


def read_scored_windows(folder: Path) -> ScoredWindows:
    """Every window of every file under `folder` (batch transform writes one `<input>.out` per input object)."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if not files:
        raise ScoresError(f"no transform output under {folder}")
    rows: list[tuple[datetime, float, float, float, str]] = []
    for path in files:
        name = str(path.relative_to(folder))
        with path.open(encoding="utf-8") as lines:
            try:
                windows = read_transform_output(lines, source=name)
            except TransformOutputError as error:
                raise ScoresError(str(error)) from None
        sources = [name] * len(windows)
        rows.extend(
            zip(windows.window_starts, windows.observed, windows.expected, windows.scores, sources, strict=True)
        )
    if not rows:
        raise ScoresError(f"the transform output under {folder} holds no scored window ({len(files)} empty file(s))")
    rows.sort(key=lambda row: row[0])
    for previous, current in itertools.pairwise(rows):
        if previous[0] == current[0]:
            raise ScoresError(f"window {current[0]:%Y-%m-%d %H:%M:%S} appears in {previous[4]} and {current[4]}")
    return ScoredWindows(
        window_starts=tuple(row[0] for row in rows),
        observed=tuple(row[1] for row in rows),
        expected=tuple(row[2] for row in rows),
        scores=tuple(row[3] for row in rows),
    )
