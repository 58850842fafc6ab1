"""The metric set: which measures are watched by which dimensions, series keys, and interval aggregation.

A *series* is one measure at one level of the dimensions. Its key (see the README's "Metric set")::

    <measure>|<dim1>=<value or *>|<dim2>=<value or *>...     dimensions in config order, * = rolled up

For every combination of dimension values seen in an interval (a *leaf*, level ``combination``), the
series are: the leaf itself; for each dimension d on its own, the roll-up that keeps only d (level
``rollup``; with one dimension that is the leaf again); and the total (level ``total``, every dimension
``*``). Not every subset of dimensions: that would grow as 2^n. Dimension values are escaped in keys
(``|`` ``=`` ``*`` ``%`` percent-encoded) and an empty or missing value is the literal ``(empty)``.

Aggregations (Lookout for Metrics' SUM and COUNT): ``sum`` adds the field's numeric values; a blank or
non-numeric cell is not added and its row counts as skipped. ``count`` counts the rows in which the field
is present and non-empty.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["sum", "count"]
Level = Literal["combination", "rollup", "total"]
ROLLED_UP = "*"
EMPTY_VALUE = "(empty)"
_ESCAPES = {"%": "%25", "|": "%7C", "=": "%3D", "*": "%2A"}  # "%" first, so escapes are not re-escaped
LEVEL_RANK: dict[Level, int] = {"combination": 0, "rollup": 1, "total": 2}


class MetricSetError(ValueError):
    """The DIMENSIONS / MEASURES setting is malformed; the message names it."""


class CsvFormatError(ValueError):
    """An interval CSV does not have the configured columns; the message names them and the header."""


@dataclass(frozen=True)
class Measure:
    name: str
    aggregation: Aggregation = "sum"


@dataclass(frozen=True)
class MetricSet:
    dimensions: tuple[str, ...]
    measures: tuple[Measure, ...]

    def __post_init__(self) -> None:
        if not self.dimensions or not self.measures:
            raise MetricSetError("a metric set needs at least one dimension and one measure")
        names = list(self.dimensions) + [m.name for m in self.measures]
        if len(set(names)) != len(names):
            raise MetricSetError(f"dimensions and measures must be distinct names, got {names}")

    @property
    def signature(self) -> str:
        """Identifies the metric set in the detector state (a state of another metric set is not reused)."""
        return ",".join(self.dimensions) + "|" + ",".join(f"{m.name}:{m.aggregation}" for m in self.measures)

    def measure(self, name: str) -> Measure:
        for measure in self.measures:
            if measure.name == name:
                return measure
        raise KeyError(name)

    def series_keys(self, measure: str, values: Sequence[str]) -> list[str]:
        """Keys of every series a row with these dimension values (config order) adds to: leaf, roll-ups, total."""
        levels: list[tuple[str | None, ...]] = [tuple(values)]
        if len(self.dimensions) > 1:
            for index in range(len(self.dimensions)):
                levels.append(tuple(v if i == index else None for i, v in enumerate(values)))
        levels.append((None,) * len(self.dimensions))
        keys: list[str] = []
        for level_values in levels:
            key = self.key(measure, level_values)
            if key not in keys:
                keys.append(key)
        return keys

    def key(self, measure: str, values: Sequence[str | None]) -> str:
        """``values`` are raw dimension values (config order), None for rolled up."""
        parts = [measure] + [
            f"{dimension}={ROLLED_UP if value is None else escape_value(value)}"
            for dimension, value in zip(self.dimensions, values, strict=True)
        ]
        return "|".join(parts)


@dataclass(frozen=True)
class SeriesKey:
    """A parsed series key: ``dimensions`` maps each dimension to its (unescaped) value, None when rolled up."""

    measure: str
    dimensions: dict[str, str | None]

    @property
    def level(self) -> Level:
        rolled = sum(value is None for value in self.dimensions.values())
        if rolled == 0:
            return "combination"
        return "total" if rolled == len(self.dimensions) else "rollup"

    def covers(self, leaf: SeriesKey) -> bool:
        """True when the leaf's rows are part of this series (same measure, every kept value equal)."""
        return self.measure == leaf.measure and all(
            value is None or leaf.dimensions.get(dimension) == value for dimension, value in self.dimensions.items()
        )

    def record_dimensions(self) -> dict[str, str]:
        """As the group record shows them: raw values, ``*`` for rolled up."""
        return {dimension: ROLLED_UP if value is None else value for dimension, value in self.dimensions.items()}

    def label(self) -> str:
        """``web/de``, ``web/*``, ``total``: how summaries name the series."""
        if self.level == "total":
            return "total"
        return "/".join(ROLLED_UP if value is None else display_value(value) for value in self.dimensions.values())


def escape_value(value: str) -> str:
    if value == "":
        return EMPTY_VALUE
    for character, escaped in _ESCAPES.items():
        value = value.replace(character, escaped)
    return value


def unescape_value(text: str) -> str:
    if text == EMPTY_VALUE:
        return ""
    for character, escaped in reversed(_ESCAPES.items()):
        text = text.replace(escaped, character)
    return text


def parse_series_key(key: str) -> SeriesKey:
    measure, *parts = key.split("|")
    dimensions: dict[str, str | None] = {}
    for part in parts:
        dimension, _, value = part.partition("=")
        dimensions[dimension] = None if value == ROLLED_UP else unescape_value(value)
    return SeriesKey(measure, dimensions)


def display_value(value: str) -> str:
    """A dimension value as people read it (``(empty)`` for the empty value)."""
    return EMPTY_VALUE if value == "" else value


def parse_dimensions(text: str) -> tuple[str, ...]:
    """``DIMENSIONS``: comma-separated column names."""
    names = tuple(name.strip() for name in text.split(","))
    if not text.strip() or any(not name for name in names):
        raise MetricSetError(f"DIMENSIONS must be comma-separated column names, got {text!r}")
    return names


def parse_measures(text: str) -> tuple[Measure, ...]:
    """``MEASURES``: comma-separated ``name:agg`` with agg ``sum`` or ``count`` (``views:sum,revenue:sum``)."""
    measures = []
    for item in text.split(","):
        name, separator, aggregation = item.strip().partition(":")
        name, aggregation = name.strip(), aggregation.strip()
        if not name or not separator or aggregation not in ("sum", "count"):
            raise MetricSetError(f"MEASURES must be comma-separated name:sum or name:count, got {text!r}")
        measures.append(Measure(name, "sum" if aggregation == "sum" else "count"))
    return tuple(measures)


@dataclass(frozen=True)
class IntervalAggregate:
    totals: dict[str, float]  # by series key: every measure at every level
    rows: int  # data rows read
    skipped_rows: int  # rows with a sum measure's cell blank or not a number (that cell is not added)


def aggregate_intervals(
    csv_texts: Iterable[str], metric_set: MetricSet, timestamp_column: str | None = None
) -> IntervalAggregate:
    """Aggregate every CSV of an interval (each with its own header row) into series totals."""
    totals: dict[str, float] = {}
    rows = skipped = 0
    required = [*metric_set.dimensions, *(m.name for m in metric_set.measures)]
    if timestamp_column:
        required.insert(0, timestamp_column)
    for text in csv_texts:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            continue  # empty file: Glue writes these for windows without data
        missing = [column for column in required if column not in reader.fieldnames]
        if missing:
            raise CsvFormatError(
                f"interval CSV lacks the configured column(s) {', '.join(missing)}; its header is "
                f"{','.join(reader.fieldnames)} (settings streaming.dimensions / streaming.measures)"
            )
        for row in reader:
            rows += 1
            values = [(row.get(dimension) or "").strip() for dimension in metric_set.dimensions]
            row_skipped = False
            for measure in metric_set.measures:
                cell = (row.get(measure.name) or "").strip()
                if measure.aggregation == "count":
                    amount = 1.0 if cell else 0.0
                else:
                    try:
                        amount = float(cell)
                    except ValueError:
                        amount = math.nan
                    if not math.isfinite(amount):
                        row_skipped, amount = True, 0.0
                for key in metric_set.series_keys(measure.name, values):
                    totals[key] = totals.get(key, 0.0) + amount
            skipped += row_skipped
    return IntervalAggregate(totals=totals, rows=rows, skipped_rows=skipped)


def leaves_of(keys: Iterable[str]) -> dict[str, SeriesKey]:
    """The combination-level keys among ``keys``, parsed."""
    parsed = {key: parse_series_key(key) for key in keys}
    return {key: series for key, series in parsed.items() if series.level == "combination"}


def totals_by_measure(totals: Mapping[str, float], metric_set: MetricSet) -> dict[str, float]:
    """Each measure's total series value (0 when the interval had no rows)."""
    rolled = (None,) * len(metric_set.dimensions)
    return {m.name: totals.get(metric_set.key(m.name, rolled), 0.0) for m in metric_set.measures}
