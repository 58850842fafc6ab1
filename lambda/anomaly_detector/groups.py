"""Anomaly groups: an interval's anomalous series of one measure and direction, with their root cause.

Pure functions over the interval's series verdicts (:class:`anomaly_detector.scoring.DimensionScore`,
keyed by series key). The record written per group is the README's "Anomaly group record".

- A series is *anomalous* in an interval, for a measure and direction, when its anomaly opens now (the
  model's ``is_anomaly``: news), or when a group of that measure and direction is open and the series is
  still loud inside its own open anomaly (``ongoing``, severity at least the model's clearing level,
  ``episode_clear_fraction`` x the threshold, same direction). So a group opens only on news, and the
  return to normal after a spike (which the model judges inside the spike's open anomaly, often in the
  other direction) neither opens a group of its own nor keeps one open.
- Per measure and direction, the anomalous series form one group. Its *contributors* are leaf
  combinations: the anomalous leaves, plus, for an anomalous roll-up or total with no anomalous leaf
  below it (a change spread thinly over many combinations), every leaf below it that moved in the
  group's direction. A contributor's *share* is its deviation in the group's direction
  (observed - expected, clipped at 0 on the other side) over the sum of those deviations.
- *Continuity*: a group stays open (same ``group_id``, status ``ongoing``) while every interval has an
  anomalous series of that measure and direction; the first interval without one closes it, and a later
  one opens a new group (new id). Open groups are kept in the detector state (:class:`OpenGroup`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from anomaly_detector.metric_set import LEVEL_RANK, MetricSet, SeriesKey, parse_series_key

if TYPE_CHECKING:
    from anomaly_detector.scoring import DimensionScore

Direction = Literal["high", "low"]
DIRECTIONS: tuple[Direction, ...] = ("low", "high")
ROOT_CAUSE_SHARE = 0.5  # the root-cause text names the top contributors that together hold at least this share


@dataclass(frozen=True)
class OpenGroup:
    """A group still open after an interval: what the next interval needs to continue it."""

    group_id: str
    opened_at: str  # interval_start of its first interval
    alerted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"group_id": self.group_id, "opened_at": self.opened_at, "alerted": self.alerted}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> OpenGroup:
        return cls(str(document["group_id"]), str(document["opened_at"]), bool(document.get("alerted", False)))


def open_group_key(measure: str, direction: str) -> str:
    return f"{measure}|{direction}"


def is_anomalous(score: DimensionScore, direction: str, group_is_open: bool, member_min_severity: float) -> bool:
    if score.status != "scored" or score.direction != direction:
        return False
    if score.is_anomaly:
        return True
    return group_is_open and score.ongoing and score.severity >= member_min_severity


def form_groups(
    scores: Sequence[DimensionScore],
    metric_set: MetricSet,
    interval_start: datetime,
    interval_end: datetime,
    open_groups: Mapping[str, OpenGroup],
    member_min_severity: float,
) -> tuple[list[dict[str, Any]], dict[str, OpenGroup]]:
    """The interval's group records (most severe first), and the groups open after it (by measure|direction)."""
    parsed = {score.dimension_value: parse_series_key(score.dimension_value) for score in scores}
    groups: list[dict[str, Any]] = []
    still_open: dict[str, OpenGroup] = {}
    for measure in metric_set.measures:
        of_measure = [score for score in scores if parsed[score.dimension_value].measure == measure.name]
        leaves = [score for score in of_measure if parsed[score.dimension_value].level == "combination"]
        for direction in DIRECTIONS:
            key = open_group_key(measure.name, direction)
            previous = open_groups.get(key)
            members = [
                score
                for score in of_measure
                if is_anomalous(score, direction, previous is not None, member_min_severity)
            ]
            if not members:
                continue
            if previous is None:
                previous = OpenGroup(f"{measure.name}-{direction}-{interval_start:%Y%m%dT%H%MZ}", _time(interval_start))
                status = "new"
            else:
                status = "ongoing"
            still_open[key] = previous
            contributors = _contributors(members, leaves, parsed, direction)
            level = max((parsed[m.dimension_value].level for m in members), key=lambda lvl: LEVEL_RANK[lvl])
            by_severity = sorted(members, key=lambda m: (-m.severity, m.dimension_value))
            groups.append(
                {
                    "group_id": previous.group_id,
                    "status": status,
                    "measure": measure.name,
                    "aggregation": measure.aggregation,
                    "interval_start": _time(interval_start),
                    "interval_end": _time(interval_end),
                    "opened_at": previous.opened_at,
                    "severity": _round(max(m.severity for m in members)),
                    "direction": direction,
                    "evidence": by_severity[0].evidence,  # what is unusual about the most severe series
                    "observed": _round(sum(c["observed"] for c in contributors)),
                    "expected": _round(sum(c["expected"] for c in contributors)),
                    "level": level,
                    "contributors": contributors,
                    "anomalous_series": [_series_entry(m, parsed[m.dimension_value]) for m in by_severity],
                    "alerted": previous.alerted,
                    "feedback": None,
                }
            )
    groups.sort(key=lambda group: (-group["severity"], group["group_id"]))
    return groups, still_open


def _contributors(
    members: Sequence[DimensionScore],
    leaves: Sequence[DimensionScore],
    parsed: Mapping[str, SeriesKey],
    direction: Direction,
) -> list[dict[str, Any]]:
    anomalous_leaves = [m for m in members if parsed[m.dimension_value].level == "combination"]
    chosen = {leaf.dimension_value: leaf for leaf in anomalous_leaves}
    for member in members:
        series = parsed[member.dimension_value]
        if series.level == "combination":
            continue
        if any(series.covers(parsed[leaf.dimension_value]) for leaf in anomalous_leaves):
            continue  # the anomalous leaves below it already explain it
        for leaf in leaves:
            if series.covers(parsed[leaf.dimension_value]) and _deviation(leaf, direction) > 0:
                chosen.setdefault(leaf.dimension_value, leaf)
    deviations = {key: _deviation(leaf, direction) for key, leaf in chosen.items()}
    total_deviation = sum(deviations.values())
    entries: list[dict[str, Any]] = [
        {
            "series": key,
            "dimensions": parsed[key].record_dimensions(),
            "observed": _round(leaf.value),
            "expected": _round(leaf.expected if leaf.expected is not None else leaf.value),
            "share": _round(deviations[key] / total_deviation) if total_deviation > 0 else 0.0,
            "severity": _round(leaf.severity),
        }
        for key, leaf in chosen.items()
    ]
    entries.sort(key=lambda entry: (-entry["share"], -entry["severity"], entry["series"]))
    return entries


def _deviation(score: DimensionScore, direction: Direction) -> float:
    """The series' move in ``direction`` (observed - expected, or the reverse for "low"), at least 0."""
    if score.expected is None or not math.isfinite(score.expected):
        return 0.0
    change = score.value - score.expected
    return max(change, 0.0) if direction == "high" else max(-change, 0.0)


def _series_entry(score: DimensionScore, series: SeriesKey) -> dict[str, Any]:
    return {
        "series": score.dimension_value,
        "level": series.level,
        "dimensions": series.record_dimensions(),
        "severity": _round(score.severity),
        "observed": _round(score.value),
        "expected": _round(score.expected),
        "expected_low": _round(score.expected_low),
        "expected_high": _round(score.expected_high),
        "evidence": score.evidence,
        "mean_shift": _round(score.mean_shift),
    }


def root_cause(group: Mapping[str, Any]) -> str:
    """The top contributors whose shares add to at least 50 %: ``78% in web/de`` (``in web/de`` without shares)."""
    parts: list[str] = []
    held = 0.0
    for contributor in group.get("contributors", []):
        where = "/".join(value if value != "" else "(empty)" for value in contributor["dimensions"].values())
        share = float(contributor["share"])
        parts.append(f"{100 * share:.0f}% in {where}" if share > 0 else f"in {where}")
        held += share
        if held >= ROOT_CAUSE_SHARE or share <= 0:
            break
    return ", ".join(parts) if parts else "no combination identified"


def describe_group(group: Mapping[str, Any]) -> str:
    """``revenue low, 78% in web/de``."""
    return f"{group['measure']} {group['direction']}, {root_cause(group)}"


def _round(value: float | None) -> float | None:
    """6 significant digits; None for what JSON cannot carry (an unbounded range)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
