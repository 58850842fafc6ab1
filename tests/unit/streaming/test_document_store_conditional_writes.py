"""The document stores' conditional writes: a write refuses to replace a document someone wrote since it was read.

The partitioned fan-out saves each partition's state this way, so that an execution that overlaps another cannot
put back an older state (``fanout._save_state``). The S3 store is run against moto, whose S3 checks ``If-Match`` and
``If-None-Match`` (PutObject) as S3 does; the local store must be at least as strict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from anomaly_detector.stores import (
    DocumentChangedError,
    LocalDocumentStore,
    S3DocumentStore,
    VersionedDocument,
)
from botocore.stub import Stubber
from moto import mock_aws

BUCKET = "data-bucket"
KEY = "metrics/detector-state/history.part-0-of-2.json"


@pytest.fixture(params=["s3", "local"])
def documents(request: pytest.FixtureRequest, aws_env: None, tmp_path: Path) -> Iterator[Any]:
    if request.param == "local":
        yield LocalDocumentStore(tmp_path)
        return
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield S3DocumentStore(client, BUCKET)


def test_of_two_writers_that_both_found_no_document_only_the_first_creates_it(documents: Any) -> None:
    # Given two runs that both read the state before either saved one
    first, second = documents.read_versioned(KEY), documents.read_versioned(KEY)
    assert first == VersionedDocument(None, None)
    # When both save
    documents.write_if_unchanged(KEY, '{"run": 1}', first)
    with pytest.raises(DocumentChangedError, match=r"history\.part-0-of-2\.json changed since it was read"):
        documents.write_if_unchanged(KEY, '{"run": 2}', second)
    # Then the first run's document stands
    assert documents.read_document(KEY) == '{"run": 1}'


def test_a_write_against_a_stale_read_is_refused_and_a_fresh_read_may_write(documents: Any) -> None:
    # Given a document that another writer replaced after this run read it
    documents.write_document(KEY, '{"interval": 1}')
    stale = documents.read_versioned(KEY)
    documents.write_if_unchanged(KEY, '{"interval": 3}', documents.read_versioned(KEY))
    # When this run saves against what it read, then nothing is written
    with pytest.raises(DocumentChangedError):
        documents.write_if_unchanged(KEY, '{"interval": 2}', stale)
    assert documents.read_document(KEY) == '{"interval": 3}'
    # And after reading again it may write
    fresh = documents.read_versioned(KEY)
    assert fresh.text == '{"interval": 3}'
    documents.write_if_unchanged(KEY, '{"interval": 4}', fresh)
    assert documents.read_document(KEY) == '{"interval": 4}'


def test_a_document_deleted_since_it_was_read_counts_as_changed(documents: Any, tmp_path: Path) -> None:
    documents.write_document(KEY, "{}")
    read = documents.read_versioned(KEY)
    if isinstance(documents, LocalDocumentStore):
        (tmp_path / KEY).unlink()
    else:
        documents.s3.delete_object(Bucket=BUCKET, Key=KEY)
    with pytest.raises(DocumentChangedError):
        documents.write_if_unchanged(KEY, '{"late": true}', read)


def test_the_local_store_sees_a_rewrite_of_the_same_bytes(tmp_path: Path) -> None:
    # S3 gives every write of an SSE-KMS object a new ETag, so the local store must not take equal bytes as "unchanged"
    documents = LocalDocumentStore(tmp_path)
    documents.write_document(KEY, '{"same": 1}')
    read = documents.read_versioned(KEY)
    documents.write_document(KEY, '{"same": 1}')
    with pytest.raises(DocumentChangedError):
        documents.write_if_unchanged(KEY, '{"same": 2}', read)


@pytest.mark.parametrize(("code", "status"), [("ConditionalRequestConflict", 409), ("PreconditionFailed", 412)])
def test_s3_answers_that_mean_someone_else_wrote_are_a_changed_document(aws_env: None, code: str, status: int) -> None:
    client = boto3.client("s3")
    with Stubber(client) as stub:
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        with pytest.raises(DocumentChangedError):
            S3DocumentStore(client, BUCKET).write_if_unchanged(KEY, "{}", VersionedDocument("{}", '"etag"'))


def test_other_s3_errors_are_not_mistaken_for_a_changed_document(aws_env: None) -> None:
    client = boto3.client("s3")
    with Stubber(client) as stub:
        stub.add_client_error("put_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(Exception, match="AccessDenied") as raised:
            S3DocumentStore(client, BUCKET).write_if_unchanged(KEY, "{}", VersionedDocument(None, None))
    assert not isinstance(raised.value, DocumentChangedError)
