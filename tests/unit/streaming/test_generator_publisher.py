"""PutRecords chunking and per-record retry, against a stubbed Kinesis client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from metrics_generator.publisher import (
    MAX_BYTES_PER_REQUEST,
    RecordsNotDeliveredError,
    RetryPolicy,
    chunk_entries,
    put_records_with_retry,
    to_entries,
)

STREAM = "events"


@pytest.fixture
def kinesis(aws_env: None) -> Any:
    return boto3.client("kinesis", region_name="eu-west-1")


@pytest.fixture
def stubber(kinesis: Any) -> Iterator[Stubber]:
    with Stubber(kinesis) as stub:
        yield stub
        stub.assert_no_pending_responses()


def sample_records(count: int) -> list[dict[str, Any]]:
    return [
        {"platform": "web", "marketplace": "us", "event_time": "2025-03-01 12:00:00", "views": i, "revenue": 1.5}
        for i in range(count)
    ]


def ok(count: int) -> dict[str, Any]:
    # FailedRecordCount is omitted: the stub validator rejects 0, and the code treats absent as 0.
    return {"Records": [{"SequenceNumber": str(i), "ShardId": "s-0"} for i in range(count)]}


def failed_result() -> dict[str, str]:
    return {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}


def test_entries_are_json_with_marketplace_platform_partition_keys() -> None:
    entries = to_entries([{"platform": "ios", "marketplace": "jp", "views": 3}])
    assert entries == [{"Data": b'{"platform":"ios","marketplace":"jp","views":3}', "PartitionKey": "jp-ios"}]


def test_only_failed_records_are_resent(kinesis: Any, stubber: Stubber) -> None:
    # Given three records of which the second fails once
    entries = to_entries(sample_records(3))
    stubber.add_response(
        "put_records",
        {
            "FailedRecordCount": 1,
            "Records": [
                {"SequenceNumber": "1", "ShardId": "s-0"},
                failed_result(),
                {"SequenceNumber": "3", "ShardId": "s-0"},
            ],
        },
        {"StreamName": STREAM, "Records": entries},
    )
    # And the retry must carry only that record
    stubber.add_response("put_records", ok(1), {"StreamName": STREAM, "Records": [entries[1]]})
    sleeps: list[float] = []

    # When they are published
    delivered = put_records_with_retry(
        kinesis, STREAM, entries, policy=RetryPolicy(base_delay_seconds=0.1), sleep=sleeps.append, jitter=lambda: 1.0
    )

    # Then all three are delivered after one backoff
    assert delivered == 3
    assert sleeps == [0.1]


def test_gives_up_after_the_attempt_budget_with_a_count(kinesis: Any, stubber: Stubber) -> None:
    # Given a record that keeps failing
    entries = to_entries(sample_records(2))
    stubber.add_response(
        "put_records",
        {"FailedRecordCount": 1, "Records": [{"SequenceNumber": "1", "ShardId": "s-0"}, failed_result()]},
        {"StreamName": STREAM, "Records": entries},
    )
    for _ in range(2):
        stubber.add_response(
            "put_records",
            {"FailedRecordCount": 1, "Records": [failed_result()]},
            {"StreamName": STREAM, "Records": [entries[1]]},
        )
    sleeps: list[float] = []

    # When publishing with three attempts
    with pytest.raises(RecordsNotDeliveredError) as raised:
        put_records_with_retry(
            kinesis,
            STREAM,
            entries,
            policy=RetryPolicy(max_attempts=3, base_delay_seconds=0.1, max_delay_seconds=10),
            sleep=sleeps.append,
            jitter=lambda: 1.0,
        )

    # Then it stops after three calls, backing off exponentially in between, and reports the count
    assert raised.value.failed == 1
    assert raised.value.total == 2
    assert raised.value.error_codes == {"ProvisionedThroughputExceededException": 1}
    assert sleeps == [0.1, 0.2]


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay_seconds=0.5, max_delay_seconds=2.0)
    assert [policy.delay(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert policy.delay(3, 0.25) == 0.5


def test_more_than_500_records_go_in_several_requests(kinesis: Any, stubber: Stubber) -> None:
    # Given 1,201 records
    entries = to_entries(sample_records(1201))
    for chunk in (entries[:500], entries[500:1000], entries[1000:]):
        stubber.add_response("put_records", ok(len(chunk)), {"StreamName": STREAM, "Records": chunk})

    # When they are published
    delivered = put_records_with_retry(kinesis, STREAM, entries, sleep=lambda _: None)

    # Then three requests of 500, 500 and 201 were made (the stubber checks each one)
    assert delivered == 1201


def test_chunks_respect_the_5_mib_request_limit() -> None:
    # Given six records of almost 1 MB each
    entries: list[Any] = [{"Data": b"x" * 1_000_000, "PartitionKey": f"k{i}"} for i in range(6)]

    # When they are chunked
    chunks: list[list[Any]] = list(chunk_entries(entries))

    # Then no chunk exceeds 5 MiB and nothing is lost
    assert [len(c) for c in chunks] == [5, 1]
    assert all(sum(len(e["Data"]) + len(e["PartitionKey"]) for e in c) <= MAX_BYTES_PER_REQUEST for c in chunks)


def test_an_oversized_record_is_refused() -> None:
    with pytest.raises(ValueError, match="1 MiB"):
        to_entries([{"platform": "web", "marketplace": "us", "blob": "x" * 1_100_000}])
