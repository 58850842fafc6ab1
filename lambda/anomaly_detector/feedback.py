"""Feedback on anomaly groups ("this is not an anomaly") and the rule by which it quiets later alerts.

A label is one JSON file per group, ``<feedback prefix><group_id>.json`` in the data bucket (locally
``out/streaming/feedback/``), written by ``python -m streaming_cli feedback``. Writing a group's label again
replaces it, so the latest label for a group wins.

Suppression rule (:func:`suppressing_label`). A "not_anomaly" label stops alerts for a later group when the
group has the same pattern at the labelled level:

- the same measure and the same direction (a label on "revenue low" says nothing about "revenue high");
- the same level (combination, roll-up or total) as the labelled group's most aggregated anomalous level;
- at least one anomalous series at that level in common with the label's series;
- a deviation no larger than the labelled one by more than :data:`SUPPRESSION_MARGIN` (50%): the group's
  relative deviation ``|observed - expected| / |expected|`` is at most 1.5 times the label's. A bigger
  anomaly of the same kind still alerts.

An "anomaly" label on a group with the same pattern (measure, direction, level, overlapping series),
recorded later than a "not_anomaly" label, overrides it: only "not_anomaly" labels recorded after the
latest matching "anomaly" label suppress.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

Verdict = Literal["not_anomaly", "anomaly"]
VERDICTS: tuple[Verdict, ...] = ("not_anomaly", "anomaly")
# How much bigger (relative deviation) a later anomaly of a labelled pattern may be and still be suppressed.
SUPPRESSION_MARGIN = 0.5
DEFAULT_FEEDBACK_PREFIX = "feedback/"
# Group ids are <measure>-<low|high>-<YYYYMMDDTHHMMZ>; measure names are column names (letters, digits, '_').
GROUP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}-(low|high)-\d{8}T\d{4}Z$")


class FeedbackError(ValueError):
    """A label or group id is malformed; the message names it."""


@dataclass(frozen=True)
class FeedbackLabel:
    """A person's verdict on one anomaly group, with the pattern it stands for."""

    group_id: str
    verdict: Verdict
    measure: str
    direction: str
    level: str
    # The group's anomalous series keys at ``level`` (the pattern's "where").
    series: tuple[str, ...]
    severity: float
    observed: float
    expected: float
    recorded_at: str  # ISO 8601 UTC, e.g. 2026-12-02T15:00:00Z
    note: str | None = None

    @classmethod
    def from_group(
        cls, group: Mapping[str, Any], *, verdict: Verdict, recorded_at: str, note: str | None = None
    ) -> FeedbackLabel:
        level = str(group["level"])
        series = tuple(sorted({str(s["series"]) for s in group.get("anomalous_series", []) if s.get("level") == level}))
        return cls(
            group_id=str(group["group_id"]),
            verdict=verdict,
            measure=str(group["measure"]),
            direction=str(group["direction"]),
            level=level,
            series=series,
            severity=float(group["severity"]),
            observed=float(group["observed"]),
            expected=float(group["expected"]),
            recorded_at=recorded_at,
            note=note,
        )

    def to_json(self) -> str:
        document = asdict(self)
        document["series"] = list(self.series)
        return json.dumps(document, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> FeedbackLabel:
        try:
            raw = json.loads(text)
            label = cls(
                group_id=str(raw["group_id"]),
                verdict=raw["verdict"],
                measure=str(raw["measure"]),
                direction=str(raw["direction"]),
                level=str(raw["level"]),
                series=tuple(str(key) for key in raw["series"]),
                severity=float(raw["severity"]),
                observed=float(raw["observed"]),
                expected=float(raw["expected"]),
                recorded_at=str(raw["recorded_at"]),
                note=None if raw.get("note") is None else str(raw["note"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise FeedbackError(f"{source} is not a feedback label: {error}") from None
        if label.verdict not in VERDICTS:
            raise FeedbackError(f"{source}: verdict must be one of {', '.join(VERDICTS)}, got {label.verdict!r}")
        return label


def check_group_id(group_id: str) -> str:
    if not GROUP_ID.match(group_id):
        raise FeedbackError(
            f"group id {group_id!r} is not a group id (<measure>-<low|high>-<YYYYMMDDTHHMMZ>, "
            "e.g. revenue-low-20261202T1405Z)"
        )
    return group_id


def relative_deviation(observed: float, expected: float) -> float:
    """``|observed - expected| / |expected|`` (infinite when nothing was expected but something deviates)."""
    deviation = abs(observed - expected)
    if expected == 0:
        return 0.0 if deviation == 0 else math.inf
    return deviation / abs(expected)


def same_pattern(group: Mapping[str, Any], label: FeedbackLabel) -> bool:
    """Same measure, direction and level, with at least one anomalous series in common at that level."""
    if (group.get("measure"), group.get("direction"), group.get("level")) != (
        label.measure,
        label.direction,
        label.level,
    ):
        return False
    at_level = {str(s["series"]) for s in group.get("anomalous_series", []) if s.get("level") == label.level}
    return not at_level.isdisjoint(label.series)


def suppressing_label(group: Mapping[str, Any], labels: Sequence[FeedbackLabel]) -> FeedbackLabel | None:
    """The "not_anomaly" label that keeps this group quiet, if any (the module docstring states the rule)."""
    matching = [label for label in labels if same_pattern(group, label)]
    confirmed = [label.recorded_at for label in matching if label.verdict == "anomaly"]
    latest_confirmation = max(confirmed, default="")
    deviation = relative_deviation(float(group["observed"]), float(group["expected"]))
    candidates = [
        label
        for label in matching
        if label.verdict == "not_anomaly"
        and label.recorded_at > latest_confirmation
        and deviation <= relative_deviation(label.observed, label.expected) * (1 + SUPPRESSION_MARGIN)
    ]
    return max(candidates, key=lambda label: label.recorded_at, default=None)


def apply_feedback(groups: Sequence[Mapping[str, Any]], labels: Sequence[FeedbackLabel]) -> list[dict[str, Any]]:
    """Copies of the groups with ``feedback`` set to the label in force.

    A group's own label (by group id) first; else "not_anomaly" if a label for the same pattern suppresses
    it; else ``None``.
    """
    own = latest_by_group(labels)
    updated = []
    for group in groups:
        record = dict(group)
        label = own.get(str(group.get("group_id")))
        if label is not None:
            record["feedback"] = label.verdict
        elif suppressing_label(group, labels) is not None:
            record["feedback"] = "not_anomaly"
        else:
            record["feedback"] = None
        updated.append(record)
    return updated


def latest_by_group(labels: Sequence[FeedbackLabel]) -> dict[str, FeedbackLabel]:
    latest: dict[str, FeedbackLabel] = {}
    for label in labels:
        if label.group_id not in latest or label.recorded_at >= latest[label.group_id].recorded_at:
            latest[label.group_id] = label
    return latest


class FeedbackStore(Protocol):
    def read_labels(self) -> list[FeedbackLabel]: ...

    def write_label(self, label: FeedbackLabel) -> str: ...


def label_key(prefix: str, group_id: str) -> str:
    return f"{prefix}{check_group_id(group_id)}.json"


@dataclass(frozen=True)
class S3FeedbackStore:
    """Labels under ``prefix`` in the data bucket, one object per group id."""

    s3: S3Client
    bucket: str
    prefix: str = DEFAULT_FEEDBACK_PREFIX

    def read_labels(self) -> list[FeedbackLabel]:
        labels = []
        for key in self._keys():
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
            label = _parse_or_skip(body, f"s3://{self.bucket}/{key}")
            if label is not None:
                labels.append(label)
        return labels

    def write_label(self, label: FeedbackLabel) -> str:
        key = label_key(self.prefix, label.group_id)
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=label.to_json().encode("utf-8"), ContentType="application/json"
        )
        return f"s3://{self.bucket}/{key}"

    def _keys(self) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".json"):
                    yield item["Key"]


@dataclass(frozen=True)
class LocalFeedbackStore:
    """Labels in a folder (the local mode's ``out/streaming/feedback/``), laid out like the bucket prefix."""

    folder: Path

    def read_labels(self) -> list[FeedbackLabel]:
        if not self.folder.is_dir():
            return []
        labels = []
        for path in sorted(self.folder.glob("*.json")):
            label = _parse_or_skip(path.read_text(encoding="utf-8"), str(path))
            if label is not None:
                labels.append(label)
        return labels

    def write_label(self, label: FeedbackLabel) -> str:
        path = self.folder / label_key("", label.group_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a label.
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".label-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(label.to_json())
        os.replace(temporary, path)
        return str(path)


def _parse_or_skip(text: str, source: str) -> FeedbackLabel | None:
    """A malformed label is skipped with a warning: one bad file must not stop the detector's alerts."""
    try:
        return FeedbackLabel.from_json(text, source=source)
    except FeedbackError as error:
        logger.warning("skipping feedback label: %s", error)
        return None
