"""Reading the user's ``timestamp,value`` CSV files, and writing the backtest's result CSVs.

Input: a header naming a ``timestamp`` and a ``value`` column (any order, other columns ignored, names
case-insensitive), then one row per interval in time order. Timestamps are ISO 8601
(``2024-01-31 12:05:00``, ``2024-01-31T12:05:00Z``, with an offset, or a date); naive ones are UTC.
Spacing may be irregular and a timestamp may repeat (some exports repeat rows around clock changes),
but time may not go back. Values are finite numbers. Every problem is reported with the file and the
line it is on.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TIMESTAMP_COLUMN = "timestamp"
VALUE_COLUMN = "value"
OUTPUT_COLUMNS = ("timestamp", "value", "score", "is_anomaly")


class BacktestInputError(ValueError):
    """A series file or labels file the backtest cannot use; the message names the file and line."""


@dataclass(frozen=True)
class Series:
    path: Path  # the file as given
    name: str  # path relative to the folder searched (or the file name), with "/" separators
    timestamps: tuple[datetime, ...]  # as written (naive stays naive), for the output file
    values: tuple[float, ...]


def find_series_files(root: Path) -> list[tuple[Path, str]]:
    """``root`` itself when it is a file, else every ``*.csv`` below it (recursively), with their relative names."""
    if root.is_file():
        return [(root, root.name)]
    if not root.is_dir():
        raise BacktestInputError(f"{root}: no such file or folder")
    files = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix.lower() == ".csv")
    if not files:
        raise BacktestInputError(f"{root}: no .csv files in this folder or below it")
    return [(path, path.relative_to(root).as_posix()) for path in files]


def read_series(path: Path, name: str) -> Series:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse(path, name, csv.reader(handle))
    except UnicodeDecodeError as error:
        raise BacktestInputError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise BacktestInputError(f"{path}: cannot read ({error.strerror or error})") from None
    except csv.Error as error:
        raise BacktestInputError(f"{path}: not a readable CSV file ({error})") from None


def _parse(path: Path, name: str, rows: Iterable[list[str]]) -> Series:
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None:
        raise BacktestInputError(f"{path}: the file is empty (expected a header with timestamp,value)")
    columns = [column.strip().lower() for column in header]
    missing = [column for column in (TIMESTAMP_COLUMN, VALUE_COLUMN) if column not in columns]
    if missing:
        raise BacktestInputError(
            f"{path}: line 1: the header {','.join(header)!r} lacks {' and '.join(missing)} "
            "(expected columns timestamp,value)"
        )
    time_index, value_index = columns.index(TIMESTAMP_COLUMN), columns.index(VALUE_COLUMN)
    timestamps: list[datetime] = []
    values: list[float] = []
    previous: datetime | None = None
    for line, row in enumerate(iterator, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines
        if len(row) <= max(time_index, value_index):
            raise BacktestInputError(f"{path}: line {line}: expected {len(header)} columns, got {len(row)}: {row}")
        moment = _timestamp(path, line, row[time_index])
        value = _value(path, line, row[value_index])
        if previous is not None and _utc(moment) < _utc(previous):
            raise BacktestInputError(
                f"{path}: line {line}: timestamp {row[time_index].strip()} is before the previous row's "
                f"({previous.isoformat(sep=' ')}); rows must be in time order"
            )
        previous = moment
        timestamps.append(moment)
        values.append(value)
    if not values:
        raise BacktestInputError(f"{path}: no data rows after the header")
    return Series(path, name, tuple(timestamps), tuple(values))


def _timestamp(path: Path, line: int, text: str) -> datetime:
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned[:-1] + "+00:00" if cleaned.endswith(("Z", "z")) else cleaned)
    except ValueError:
        raise BacktestInputError(
            f"{path}: line {line}: {cleaned!r} is not a timestamp (expected ISO 8601 like 2024-01-31 12:05:00)"
        ) from None
    return moment


def _value(path: Path, line: int, text: str) -> float:
    cleaned = text.strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise BacktestInputError(f"{path}: line {line}: value {cleaned!r} is not a number") from None
    if not math.isfinite(value):
        raise BacktestInputError(f"{path}: line {line}: value {cleaned!r} is not a finite number")
    return value


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_result(
    path: Path,
    series: Series,
    scores: Sequence[float],
    flags: Sequence[bool],
    extra_columns: Mapping[str, Sequence[object]],
) -> None:
    """``timestamp,value,score,is_anomaly`` and the detector's extra columns, one row per input row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extras = [name for name in extra_columns if name not in OUTPUT_COLUMNS]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*OUTPUT_COLUMNS, *extras])
        for index, (moment, value) in enumerate(zip(series.timestamps, series.values, strict=True)):
            writer.writerow(
                [
                    moment.isoformat(sep=" "),
                    repr(value),
                    f"{scores[index]:.6f}",
                    int(bool(flags[index])),
                    *(extra_columns[name][index] for name in extras),
                ]
            )
    temporary.replace(path)
