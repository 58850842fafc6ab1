"""Reading stored intervals for catch-up and history rebuilds: compact per-interval aggregates, parallel reads,
and a time budget.

A lost state (or none yet) is rebuilt by learning the last ``history_length`` stored intervals; in prod that
is 1,008 intervals of about 10 micro-batch CSVs each. Three things keep that within a Lambda run, or a few:

- **Compact aggregates.** Whenever the detector has read an interval's CSVs it writes what it computed,
  ``<aggregates_prefix>intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/totals.json`` (:class:`StoredAggregate`: the
  series totals, rows, skipped rows, the batch ids read and a fingerprint of the files read). A later read
  lists the interval's files (a rebuild lists a whole day at once: 2 pages of ListObjectsV2 for 144
  intervals), and when they are still the same files it reads that one object instead of every CSV: about
  1 request per interval instead of about 12.
- **Change detection.** The fingerprint is a SHA-256 over every data file's key (relative to the interval,
  so it carries the ``batch_id=`` folder) and its ETag and size, as the listing returns them. A batch that
  arrived after the aggregate was written (a new ``batch_id``), a replayed batch that rewrote its folder
  (new part objects, so new ETags), or a deleted one changes it, and the interval is re-read from its CSVs and
  its aggregate rewritten. A replay that wrote identical bytes may still get new ETags (objects encrypted with
  SSE-KMS have ETags that are not an MD5 of their data), which only costs one re-read. The aggregate also
  records a ``signature`` of the aggregation settings (metric set, timestamp column, frequency, format): an
  aggregate computed under other settings is never used.
- **Parallel, bounded reads.** Intervals are read by a bounded thread pool, at most ``read_workers`` at once,
  and handed back in interval order; no new read starts once the :class:`Deadline` has passed. One S3 client,
  created at cold start, is shared by the pool's threads. boto3's maintainers (boto/boto3#1592): "once
  you've created a client or resource, we guarantee that those calls are thread safe"; botocore#2991: "The
  safe approach is to create a client in the parent thread/process [...] This client can be shared as
  needed." The guide's caveat ("Multithreading or multiprocessing with clients": clients with "custom event
  hooks [...] should no longer consider their clients thread-safe without careful review") applies to the
  tests' request counter only, which takes a lock.

The caller (``anomaly_detector.logic``) learns what comes back and stops at the deadline, saving how far it
got in the state; the next scheduled run continues from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from anomaly_detector.metric_set import IntervalAggregate
from anomaly_detector.stores import IntervalStore, decode_data_file, is_interval_data, partition_path

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

AGGREGATE_FILE_NAME = "totals.json"
AGGREGATE_FORMAT = 1  # of StoredAggregate documents; bump when their meaning changes
DEFAULT_READ_WORKERS = 16
# What a run needs after the catch-up: read and judge the live interval, write anomalies, alert, metrics, the
# state. The catch-up stops this long before the Lambda's own deadline.
DEFAULT_MARGIN_SECONDS = 30.0
_BATCH_FOLDER = "batch_id="
_DATE_FOLDER = "intvl_date="
_TIME_FOLDER = "intvl_hhmm="


def _interval_of(day: date, key_in_day: str) -> tuple[datetime, str] | None:
    """``intvl_hhmm=HHMM/<relative key>`` below a day's folder -> (interval start, relative key), data files only."""
    folder, _, relative = key_in_day.partition("/")
    hhmm = folder[len(_TIME_FOLDER) :]
    if not (folder.startswith(_TIME_FOLDER) and len(hhmm) == 4 and hhmm.isdigit()) or not is_interval_data(relative):
        return None
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight + timedelta(hours=int(hhmm[:2]), minutes=int(hhmm[2:])), relative


class _LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """A point on a monotonic clock after which no new work starts (``math.inf``: never)."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    @classmethod
    def for_lambda(cls, context: _LambdaContext, margin_seconds: float = DEFAULT_MARGIN_SECONDS) -> Deadline:
        """The invocation's remaining time minus ``margin_seconds`` (at least zero)."""
        remaining = context.get_remaining_time_in_millis() / 1000.0
        return cls.after(max(0.0, remaining - margin_seconds))

    def expired(self) -> bool:
        return self.clock() >= self.at

    def remaining(self) -> float:
        return self.at - self.clock()


@dataclass(frozen=True)
class DataFile:
    """One CSV part of an interval as listed: its key relative to the interval's folder, and its version."""

    relative_key: str
    version: str  # S3: "<ETag>:<size>"; local: "<size>:<mtime_ns>"

    @property
    def batch_id(self) -> str:
        """The ``batch_id=`` folder it is in ("" for a file at the interval's top level)."""
        for folder in self.relative_key.split("/")[:-1]:
            if folder.startswith(_BATCH_FOLDER):
                return folder[len(_BATCH_FOLDER) :]
        return ""


def files_fingerprint(files: Iterable[DataFile]) -> str:
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.relative_key):
        digest.update(f"{file.relative_key}\0{file.version}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredAggregate:
    """The ``totals.json`` document of one interval."""

    aggregate: IntervalAggregate
    batch_ids: tuple[str, ...]
    fingerprint: str
    signature: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": AGGREGATE_FORMAT,
                "signature": self.signature,
                "batch_ids": list(self.batch_ids),
                "files_fingerprint": self.fingerprint,
                # Every field of the aggregate (totals keyed by series key, rows, skipped_rows, ...); floats are
                # written with repr, so they read back exactly.
                **dataclasses.asdict(self.aggregate),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> StoredAggregate | None:
        """The parsed document, or None when it is missing, corrupt or of another format."""
        if not text:
            return None
        try:
            document = json.loads(text)
            if document.get("format") != AGGREGATE_FORMAT:
                return None
            fields = {f.name: document[f.name] for f in dataclasses.fields(IntervalAggregate)}
            fields["totals"] = {str(key): float(value) for key, value in fields["totals"].items()}
            return cls(
                aggregate=IntervalAggregate(**fields),
                batch_ids=tuple(str(batch) for batch in document["batch_ids"]),
                fingerprint=str(document["files_fingerprint"]),
                signature=str(document["signature"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def aggregation_signature(settings: Any) -> str:
    """What the aggregate depends on: every setting except how intervals are judged and remembered."""
    fields = dataclasses.asdict(settings)
    for judging_only in ("anomaly_threshold", "history_length", "alert_min_severity"):
        fields.pop(judging_only, None)
    fields["aggregate_format"] = AGGREGATE_FORMAT
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


class IntervalSource(Protocol):
    """Interval CSVs with their versions, and the per-interval aggregates (see the module docstring)."""

    @property
    def read_workers(self) -> int:
        """How many intervals may be read at once (1: one after the other)."""
        ...

    def list_data_files(self, interval_start: datetime) -> list[DataFile]: ...

    def list_day(self, day: date) -> dict[datetime, list[DataFile]]:
        """Every interval's data files of one UTC day, by interval start (one listing for up to 144 intervals)."""
        ...

    def read_data_files(self, interval_start: datetime, files: Sequence[DataFile]) -> list[str]: ...

    def read_aggregate(self, interval_start: datetime) -> str | None: ...

    def write_aggregate(self, interval_start: datetime, body: str) -> str: ...


@dataclass(frozen=True)
class S3IntervalSource:
    s3: S3Client
    bucket: str
    intervals_prefix: str
    aggregates_prefix: str
    read_workers: int = DEFAULT_READ_WORKERS

    def list_data_files(self, interval_start: datetime) -> list[DataFile]:
        prefix = partition_path(self.intervals_prefix, interval_start)
        return [
            DataFile(item["Key"][len(prefix) :], f"{item.get('ETag', '')}:{item.get('Size', 0)}")
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if is_interval_data(item["Key"][len(prefix) :])
        ]

    def list_day(self, day: date) -> dict[datetime, list[DataFile]]:
        # ListObjectsV2 returns up to 1,000 keys per page: a prod day (144 intervals x ~10 parts) is 2 pages,
        # instead of 144 listings.
        prefix = f"{self.intervals_prefix}{_DATE_FOLDER}{day:%Y-%m-%d}/"
        by_interval: dict[datetime, list[DataFile]] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                located = _interval_of(day, item["Key"][len(prefix) :])
                if located is not None:
                    start, relative = located
                    by_interval.setdefault(start, []).append(
                        DataFile(relative, f"{item.get('ETag', '')}:{item.get('Size', 0)}")
                    )
        return by_interval

    def read_data_files(self, interval_start: datetime, files: Sequence[DataFile]) -> list[str]:
        prefix = partition_path(self.intervals_prefix, interval_start)
        texts = []
        for file in sorted(files, key=lambda f: f.relative_key):
            body = self.s3.get_object(Bucket=self.bucket, Key=prefix + file.relative_key)["Body"].read()
            texts.append(decode_data_file(file.relative_key, body))
        return texts

    def _aggregate_key(self, interval_start: datetime) -> str:
        return partition_path(self.aggregates_prefix, interval_start) + AGGREGATE_FILE_NAME

    def read_aggregate(self, interval_start: datetime) -> str | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self._aggregate_key(interval_start))
        except ClientError as error:
            # A missing key is 404 NoSuchKey only with s3:ListBucket on the prefix (else 403): the detector has it.
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read().decode("utf-8")

    def write_aggregate(self, interval_start: datetime, body: str) -> str:
        key = self._aggregate_key(interval_start)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class LocalIntervalSource:
    """The same layout under a folder (the local mode's out folder mirrors the bucket)."""

    root: Path
    intervals_prefix: str
    aggregates_prefix: str
    read_workers: int = 4

    def list_data_files(self, interval_start: datetime) -> list[DataFile]:
        folder = self.root / partition_path(self.intervals_prefix, interval_start)
        if not folder.is_dir():
            return []
        files = []
        for path in folder.rglob("*"):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and is_interval_data(relative):
                status = path.stat()
                files.append(DataFile(relative, f"{status.st_size}:{status.st_mtime_ns}"))
        return files

    def list_day(self, day: date) -> dict[datetime, list[DataFile]]:
        folder = self.root / f"{self.intervals_prefix}{_DATE_FOLDER}{day:%Y-%m-%d}"
        by_interval: dict[datetime, list[DataFile]] = {}
        if folder.is_dir():
            for path in folder.rglob("*"):
                located = _interval_of(day, path.relative_to(folder).as_posix()) if path.is_file() else None
                if located is not None:
                    status = path.stat()
                    by_interval.setdefault(located[0], []).append(
                        DataFile(located[1], f"{status.st_size}:{status.st_mtime_ns}")
                    )
        return by_interval

    def read_data_files(self, interval_start: datetime, files: Sequence[DataFile]) -> list[str]:
        folder = self.root / partition_path(self.intervals_prefix, interval_start)
        return [
            decode_data_file(file.relative_key, (folder / file.relative_key).read_bytes())
            for file in sorted(files, key=lambda f: f.relative_key)
        ]

    def _aggregate_path(self, interval_start: datetime) -> Path:
        return self.root / partition_path(self.aggregates_prefix, interval_start) / AGGREGATE_FILE_NAME

    def read_aggregate(self, interval_start: datetime) -> str | None:
        path = self._aggregate_path(interval_start)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_aggregate(self, interval_start: datetime, body: str) -> str:
        path = self._aggregate_path(interval_start)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(body, encoding="utf-8")
        temporary.replace(path)
        return str(path)


Aggregator = Callable[[list[str]], IntervalAggregate]


@dataclass(frozen=True)
class HistoryReader:
    """Reads intervals as aggregates: from ``source`` (cached aggregates, parallel), else from the store's CSVs.

    Without a ``source`` every interval is read from ``store.read_interval_csvs`` one after the other and
    nothing is written (the local mode's and the bench's in-memory stores).
    """

    store: IntervalStore
    aggregate: Aggregator
    signature: str
    source: IntervalSource | None = None

    def read(self, interval_start: datetime, listed: Sequence[DataFile] | None = None) -> IntervalAggregate:
        """One interval; ``listed``: its data files from a day listing (else it is listed on its own)."""
        if self.source is None:
            return self.aggregate(self.store.read_interval_csvs(interval_start))
        files = list(listed) if listed is not None else self.source.list_data_files(interval_start)
        if not files:
            return self.aggregate([])  # nothing stored: an empty interval, no aggregate needed
        fingerprint = files_fingerprint(files)
        stored = StoredAggregate.from_json(self.source.read_aggregate(interval_start))
        if stored is not None and stored.fingerprint == fingerprint and stored.signature == self.signature:
            return stored.aggregate
        aggregate = self.aggregate(self.source.read_data_files(interval_start, files))
        batch_ids = tuple(sorted({file.batch_id for file in files}))
        self.source.write_aggregate(
            interval_start, StoredAggregate(aggregate, batch_ids, fingerprint, self.signature).to_json()
        )
        return aggregate

    def read_in_order(
        self, interval_starts: Sequence[datetime], deadline: Deadline
    ) -> Iterator[tuple[datetime, IntervalAggregate]]:
        """Each interval's aggregate, oldest first, until ``deadline``: no read starts after it has passed.

        At most ``source.read_workers`` reads run at once (none waits in a queue, so stopping is prompt: the
        reads already running finish and are handed back). The caller may stop iterating at any time.
        """
        source = self.source
        if source is None:
            for start in interval_starts:
                if deadline.expired():
                    return
                yield start, self.read(start)
            return
        days: dict[date, dict[datetime, list[DataFile]]] = {}

        def listed(start: datetime) -> list[DataFile]:
            day = start.astimezone(UTC).date()
            if day not in days:
                days.clear()  # intervals come oldest first: a day once passed is not needed again
                days[day] = source.list_day(day)
            return days[day].get(start, [])

        if source.read_workers <= 1:
            for start in interval_starts:
                if deadline.expired():
                    return
                yield start, self.read(start, listed(start))
            return
        pending: deque[tuple[datetime, Future[IntervalAggregate]]] = deque()
        upcoming = iter(interval_starts)
        with ThreadPoolExecutor(max_workers=source.read_workers, thread_name_prefix="history-read") as pool:
            try:
                while True:
                    while len(pending) < source.read_workers and not deadline.expired():
                        next_start = next(upcoming, None)
                        if next_start is None:
                            break
                        pending.append((next_start, pool.submit(self.read, next_start, listed(next_start))))
                    if not pending:
                        return
                    start, future = pending.popleft()
                    yield start, future.result()
            finally:
                for _, future in pending:
                    future.cancel()
