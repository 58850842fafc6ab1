"""Write records to Kinesis with ``PutRecords``, retrying only the records that failed."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef

logger = Logger(child=True)

# PutRecords limits: 500 records and 5 MiB per request, 1 MiB per record (data + partition key).
MAX_RECORDS_PER_REQUEST = 500
MAX_BYTES_PER_REQUEST = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # attempts per chunk, the first one included
    base_delay_seconds: float = 0.1
    max_delay_seconds: float = 2.0

    def delay(self, retry_number: int, jitter: float) -> float:
        """Full jitter: uniform in [0, min(cap, base*2^(n-1))], ``jitter`` being a draw in [0, 1)."""
        return jitter * min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (retry_number - 1))


class RecordsNotDeliveredError(RuntimeError):
    def __init__(self, failed: int, total: int, error_codes: Mapping[str, int]) -> None:
        super().__init__(f"{failed} of {total} records were not delivered after retries: {dict(error_codes)}")
        self.failed = failed
        self.total = total
        self.error_codes = dict(error_codes)


def partition_key_for(record: Mapping[str, Any]) -> str:
    """Marketplace + platform: spreads load over shards and keeps each series' order within a shard."""
    return f"{record['marketplace']}-{record['platform']}"


def to_entries(
    records: Sequence[Mapping[str, Any]], partition_key: Callable[[Mapping[str, Any]], str] = partition_key_for
) -> list[PutRecordsRequestEntryTypeDef]:
    entries: list[PutRecordsRequestEntryTypeDef] = []
    for record in records:
        entry: PutRecordsRequestEntryTypeDef = {
            "Data": json.dumps(record, separators=(",", ":")).encode("utf-8"),
            "PartitionKey": partition_key(record),
        }
        if _entry_size(entry) > MAX_BYTES_PER_RECORD:
            raise ValueError("a record exceeds the 1 MiB Kinesis record limit")
        entries.append(entry)
    return entries


def chunk_entries(entries: Sequence[PutRecordsRequestEntryTypeDef]) -> Iterator[list[PutRecordsRequestEntryTypeDef]]:
    """Consecutive chunks of at most 500 records and 5 MiB each."""
    chunk: list[PutRecordsRequestEntryTypeDef] = []
    chunk_bytes = 0
    for entry in entries:
        size = _entry_size(entry)
        if chunk and (len(chunk) == MAX_RECORDS_PER_REQUEST or chunk_bytes + size > MAX_BYTES_PER_REQUEST):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(entry)
        chunk_bytes += size
    if chunk:
        yield chunk


def put_records_with_retry(
    kinesis: KinesisClient,
    stream_name: str,
    entries: Sequence[PutRecordsRequestEntryTypeDef],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> int:
    """Send every entry; returns how many were delivered or raises :class:`RecordsNotDeliveredError`.

    Only records whose result carries an ``ErrorCode`` are resent, with capped exponential backoff
    and full jitter. Whole-request errors (throttling of the API call itself, access denied) are
    left to botocore's own retries and propagate.
    """
    policy = policy or RetryPolicy()
    undelivered: Counter[str] = Counter()
    for chunk in chunk_entries(entries):
        pending = chunk
        for attempt in range(1, policy.max_attempts + 1):
            response = kinesis.put_records(StreamName=stream_name, Records=pending)
            if not response.get("FailedRecordCount"):
                pending = []
                break
            # Results are in request order, so failures map back to their entries by position.
            failed = [
                (entry, result.get("ErrorCode", ""))
                for entry, result in zip(pending, response["Records"], strict=True)
                if result.get("ErrorCode")
            ]
            pending = [entry for entry, _ in failed]
            if attempt < policy.max_attempts:
                delay = policy.delay(attempt, jitter())
                logger.warning(
                    "Retrying failed Kinesis records",
                    extra={"failed": len(pending), "attempt": attempt, "delay_seconds": round(delay, 3)},
                )
                sleep(delay)
            else:
                undelivered.update(code for _, code in failed)
    failed_total = sum(undelivered.values())
    if failed_total:
        raise RecordsNotDeliveredError(failed_total, len(entries), undelivered)
    return len(entries)


def _entry_size(entry: PutRecordsRequestEntryTypeDef) -> int:
    data = entry["Data"]
    size = len(data) if isinstance(data, bytes | bytearray) else len(str(data).encode("utf-8"))
    return size + len(entry["PartitionKey"].encode("utf-8"))
