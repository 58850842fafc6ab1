"""Where the anomaly group records (groups.jsonl per interval) and the feedback labels live, and reading them.

The bucket keeps them under ``metrics/``; the local out folder's ``streaming/`` mirrors that prefix:

    metrics/anomalies/intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/groups.jsonl   <out>/streaming/anomalies/...
    metrics/feedback/<group_id>.json                                       <out>/streaming/feedback/...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

BUCKET_ROOT = "metrics/"
ANOMALIES = "anomalies/"
FEEDBACK = "feedback/"
GROUPS_FILE = "groups.jsonl"
LOCAL_ROOT = "streaming"
_PARTITION = re.compile(r"intvl_date=(\d{4}-\d{2}-\d{2})/intvl_hhmm=(\d{4})/" + re.escape(GROUPS_FILE) + "$")
_GROUP_ID_TIME = re.compile(r"-(\d{8}T\d{4})Z$")


class GroupRecordError(Exception):
    """A groups file cannot be read; the message names it."""


def opened_at(group_id: str) -> datetime:
    """The first interval's start, from the id (``revenue-low-20261202T1405Z`` -> 2026-12-02 14:05 UTC)."""
    match = _GROUP_ID_TIME.search(group_id)
    if match is None:
        raise ValueError(f"group id {group_id!r} does not end in -YYYYMMDDTHHMMZ")
    return datetime.strptime(match[1], "%Y%m%dT%H%M").replace(tzinfo=UTC)


def partition_time(path: str) -> datetime | None:
    match = _PARTITION.search(path)
    if match is None:
        return None
    return datetime.strptime(f"{match[1]} {match[2]}", "%Y-%m-%d %H%M").replace(tzinfo=UTC)


class GroupFiles(Protocol):
    """The groups files of one day, and their contents."""

    @property
    def location(self) -> str: ...

    def files_of_day(self, day: date) -> list[str]: ...

    def read(self, name: str) -> str: ...


@dataclass(frozen=True)
class LocalGroupFiles:
    anomalies_folder: Path

    @property
    def location(self) -> str:
        return str(self.anomalies_folder)

    def files_of_day(self, day: date) -> list[str]:
        folder = self.anomalies_folder / f"intvl_date={day.isoformat()}"
        return sorted(str(path) for path in folder.glob(f"intvl_hhmm=*/{GROUPS_FILE}"))

    def read(self, name: str) -> str:
        return Path(name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class S3GroupFiles:
    s3: Any
    bucket: str
    prefix: str = BUCKET_ROOT + ANOMALIES

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def files_of_day(self, day: date) -> list[str]:
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}intvl_date={day.isoformat()}/"):
            keys.extend(item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(f"/{GROUPS_FILE}"))
        return sorted(keys)

    def read(self, name: str) -> str:
        return str(self.s3.get_object(Bucket=self.bucket, Key=name)["Body"].read().decode("utf-8"))


def _records(files: GroupFiles, name: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(files.read(name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise GroupRecordError(f"{name} line {number} is not JSON: {error}") from None
        if not isinstance(record, dict) or "group_id" not in record:
            raise GroupRecordError(f"{name} line {number} is not an anomaly group record")
        records.append(record)
    return records


def _files_from(files: GroupFiles, start: datetime, until: datetime) -> Iterator[str]:
    """Groups files of intervals starting at or after ``start`` (and on or before ``until``'s day), in time order."""
    day = start.date()
    while day <= until.date():
        for name in files.files_of_day(day):
            when = partition_time(name)
            if when is not None and when >= start:
                yield name
        day += timedelta(days=1)


def records_of_group(files: GroupFiles, group_id: str, *, now: datetime) -> list[dict[str, Any]]:
    """Every interval's record of one group, from the interval it opened in until the first without it."""
    found: list[dict[str, Any]] = []
    for name in _files_from(files, opened_at(group_id), now):
        matching = [record for record in _records(files, name) if record["group_id"] == group_id]
        if not matching:
            break  # the group closed (or, in its opening interval, there is no such group)
        found.extend(matching)
    return found


def records_since(files: GroupFiles, since: datetime, *, now: datetime) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for name in _files_from(files, since, now):
        records.extend(_records(files, name))
    return records
