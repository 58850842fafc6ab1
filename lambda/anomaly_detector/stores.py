"""Where interval files, anomaly files and the detector state live: S3, or a local folder.

Both stores use the same key layout, so a local run's folder mirrors the bucket:

- ``<intervals_prefix>intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/batch_id=NNNNNNNNNNNN/part-*.csv`` (written by the
  Glue job, one folder per micro-batch, which a replayed batch replaces; every CSV under the interval is read)
- ``<anomalies_prefix>intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/groups.jsonl`` (one anomaly group record a line)
- ``<state_key>`` (JSON)
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GROUPS_FILE_NAME = "groups.jsonl"
_DATA_SUFFIXES = (".csv", ".csv.gz")


def partition_path(prefix: str, interval_start: datetime) -> str:
    """``<prefix>intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/`` for the interval starting at ``interval_start`` (UTC)."""
    start = interval_start.astimezone(UTC) if interval_start.tzinfo else interval_start
    return f"{prefix}intvl_date={start:%Y-%m-%d}/intvl_hhmm={start:%H%M}/"


def is_data_file(key: str) -> bool:
    """CSV parts only: Spark also writes ``_SUCCESS`` markers and hidden checksum files."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith(_DATA_SUFFIXES) and not name.startswith((".", "_"))


def is_interval_data(relative_key: str) -> bool:
    """A data file below an interval's partition, not inside a writer's work folder (``_temporary``, ``.spark-*``)."""
    *folders, name = relative_key.split("/")
    return is_data_file(name) and not any(folder.startswith((".", "_")) for folder in folders)


def decode_data_file(key: str, body: bytes) -> str:
    return (gzip.decompress(body) if key.endswith(".gz") else body).decode("utf-8")


class IntervalStore(Protocol):
    """What the detector needs from storage; see the module docstring for the layout."""

    def read_interval_csvs(self, interval_start: datetime) -> list[str]:
        """Text of every CSV part in the interval's partition (empty list when there is none)."""
        ...

    def read_state(self) -> str | None:
        """The saved state document, or None when there is none yet."""
        ...

    def write_state(self, body: str) -> None: ...

    def write_groups(self, interval_start: datetime, body: str) -> str:
        """Write the interval's anomaly group records (JSON lines); returns where they went."""
        ...


@dataclass(frozen=True)
class S3IntervalStore:
    s3: S3Client
    bucket: str
    intervals_prefix: str
    anomalies_prefix: str
    state_key: str

    def read_interval_csvs(self, interval_start: datetime) -> list[str]:
        prefix = partition_path(self.intervals_prefix, interval_start)
        keys = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if is_interval_data(item["Key"][len(prefix) :])
        ]
        return [self._read_data_file(key) for key in sorted(keys)]

    def _read_data_file(self, key: str) -> str:
        return decode_data_file(key, self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def read_state(self) -> str | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.state_key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read().decode("utf-8")

    def write_state(self, body: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=self.state_key, Body=body.encode("utf-8"), ContentType="application/json"
        )

    def write_groups(self, interval_start: datetime, body: str) -> str:
        key = partition_path(self.anomalies_prefix, interval_start) + GROUPS_FILE_NAME
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-ndjson")
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class LocalDirStore:
    """The same layout under a folder: ``root / <key>``. Used by the local mode and tests."""

    root: Path
    intervals_prefix: str
    anomalies_prefix: str
    state_key: str

    def read_interval_csvs(self, interval_start: datetime) -> list[str]:
        folder = self.root / partition_path(self.intervals_prefix, interval_start)
        if not folder.is_dir():
            return []
        # Like the S3 listing (no delimiter): every data file below the interval, batch folders included.
        files = sorted(
            path
            for path in folder.rglob("*")
            if path.is_file() and is_interval_data(path.relative_to(folder).as_posix())
        )
        return [decode_data_file(path.name, path.read_bytes()) for path in files]

    def read_state(self) -> str | None:
        path = self.root / self.state_key
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_state(self, body: str) -> None:
        self._write(self.root / self.state_key, body)

    def write_groups(self, interval_start: datetime, body: str) -> str:
        path = self.root / partition_path(self.anomalies_prefix, interval_start) / GROUPS_FILE_NAME
        self._write(path, body)
        return str(path)

    @staticmethod
    def _write(path: Path, body: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a reader (e.g. the local mode's charts) never sees half a file.
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(body, encoding="utf-8")
        temporary.replace(path)


class DocumentChangedError(RuntimeError):
    """A conditional write found the document changed (or created, or deleted) since it was read."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} changed since it was read (another run wrote it)")
        self.key = key


@dataclass(frozen=True)
class VersionedDocument:
    """A document as read, with what a conditional write checks against."""

    text: str | None  # None: there was no document
    version: str | None  # S3: its ETag; local: its file's identity; None when there was no document


class DocumentStore(Protocol):
    """Small JSON documents by key in the data bucket (or a folder): the partitioned fan-out's states and verdicts."""

    def read_document(self, key: str) -> str | None:
        """The document's text, or None when there is none."""
        ...

    def write_document(self, key: str, body: str) -> str:
        """Write (replace) the document; returns where it went."""
        ...

    def read_versioned(self, key: str) -> VersionedDocument: ...

    def write_if_unchanged(self, key: str, body: str, read: VersionedDocument) -> str:
        """Write only if the document is still as ``read`` left it (still absent, when it was absent).

        Raises :class:`DocumentChangedError` otherwise; nothing is written then.
        """
        ...


@dataclass(frozen=True)
class S3DocumentStore:
    s3: S3Client
    bucket: str

    def read_document(self, key: str) -> str | None:
        return self.read_versioned(key).text

    def write_document(self, key: str, body: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")
        return f"s3://{self.bucket}/{key}"

    def read_versioned(self, key: str) -> VersionedDocument:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return VersionedDocument(None, None)
            raise
        return VersionedDocument(response["Body"].read().decode("utf-8"), response["ETag"])

    def write_if_unchanged(self, key: str, body: str, read: VersionedDocument) -> str:
        # S3 conditional writes (PutObject): If-Match "uploads the object only if the ETag ... matches the ETag of
        # the object in S3. If the ETag values do not match, the operation returns a 412 Precondition Failed
        # error. If a conflicting operation occurs during the upload S3 returns a 409 ConditionalRequestConflict";
        # If-None-Match "*" uploads only if the key does not exist yet (412 otherwise). With If-Match on a key that
        # was deleted meanwhile moto answers NoSuchKey (the docs do not say; taken as changed too). Conditional
        # writes need s3:PutObject and s3:GetObject, which the role has.
        data, kind = body.encode("utf-8"), "application/json"
        try:
            if read.version is not None:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=kind, IfMatch=read.version)
            else:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=kind, IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _CHANGED_CODES:
                raise DocumentChangedError(key) from error
            raise
        return f"s3://{self.bucket}/{key}"


_CHANGED_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404")


@dataclass(frozen=True)
class LocalDocumentStore:
    """The same keys under a folder: ``root / <key>`` (tests and local runs)."""

    root: Path

    def read_document(self, key: str) -> str | None:
        path = self.root / key
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def write_document(self, key: str, body: str) -> str:
        path = self.root / key
        LocalDirStore._write(path, body)
        return str(path)

    def read_versioned(self, key: str) -> VersionedDocument:
        body, version = _read_with_identity(self.root / key)
        return VersionedDocument(None if body is None else body.decode("utf-8"), version)

    def write_if_unchanged(self, key: str, body: str, read: VersionedDocument) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # At least as strict as S3's ETag check: every write replaces the file (a new file), so a write since
        # the read is seen even when it wrote the same bytes. The lock makes check-and-replace one step.
        with (path.parent / f".{path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _read_with_identity(path)[1] != read.version:
                raise DocumentChangedError(key)
            LocalDirStore._write(path, body)
        return str(path)


def _read_with_identity(path: Path) -> tuple[bytes | None, str | None]:
    """The file's bytes and an identity of exactly that file (its inode, times and content, taken from one open)."""
    try:
        with path.open("rb") as handle:
            status = os.fstat(handle.fileno())
            body = handle.read()
    except FileNotFoundError:
        return None, None
    digest = hashlib.sha256(body).hexdigest()[:16]
    return body, f"{status.st_ino}:{status.st_mtime_ns}:{status.st_ctime_ns}:{digest}"
