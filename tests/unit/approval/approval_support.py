"""Fixtures for the approval tests: a real DynamoDB API (moto server on loopback) and SageMaker's callback API
(the local mode's loopback emulator), both reached through ordinary boto3 clients."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from approval.report import parse_report
from approval.store import ApprovalStore, table_definition
from local_mode.aws_emulator import CallbackSteps, GlueService, LocalAwsEndpoint
from local_mode.dynamodb_server import DynamoDbServer, loopback_dynamodb
from pipeline_callback.retry import Retrier, RetryPolicy

REGION = "us-east-1"
EXECUTION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-dev/execution/abc123def456"
REPORT_URI = "s3://artifacts/pipeline-executions/abc123def456/evaluation/evaluation.json"
NOW = 1_767_225_600  # 2026-01-01 00:00 UTC
_table_numbers = itertools.count()

REPORT = {
    "rows_scored": 1488,
    "score_distribution": {"min": 0.41, "p50": 0.92, "p90": 1.2, "p99": 2.1, "max": 3.4, "mean": 0.97},
    "cutoff": {"value": 1.8, "method": "median + 6 x MAD of this run's scores"},
    "flagged_windows": 7,
    "anomaly_event_count": 2,
    "events": [],
    "top_events": [
        {
            "start": "2024-01-15 17:00",
            "end": "2024-01-15 19:30",
            "peak_window": "2024-01-15 18:00",
            "peak_score": 3.4,
            "windows": 6,
            "observed_passengers": 812.0,
            "expected_passengers": 420.0,
        },
        {
            "start": "2024-01-22 08:00",
            "end": "2024-01-22 08:00",
            "peak_window": "2024-01-22 08:00",
            "peak_score": 2.0,
            "windows": 1,
            "observed_passengers": 35.0,
            "expected_passengers": 310.0,
        },
    ],
}


def client_config() -> Config:
    return Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1, "mode": "standard"})


def boto_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=client_config(),
    )


@pytest.fixture
def dynamodb_server() -> Iterator[DynamoDbServer]:
    """The process's loopback DynamoDB, held for one test: it resets when its last user leaves, so no test
    sees another's tables (tests/unit/local/test_dynamodb_server.py checks exactly that)."""
    with loopback_dynamodb() as server:
        yield server


@pytest.fixture
def store(dynamodb_server: DynamoDbServer) -> ApprovalStore:
    dynamodb = boto_client("dynamodb", dynamodb_server.endpoint_url)
    name = f"approvals-{next(_table_numbers)}"
    dynamodb.create_table(**table_definition(name))
    return ApprovalStore(dynamodb, name)


@dataclass
class SageMakerCallbacks:
    steps: CallbackSteps
    client: Any

    def outcome(self, token: str) -> Any:
        return self.steps.wait(token, timeout=0)


@pytest.fixture(scope="session")
def sagemaker() -> Iterator[SageMakerCallbacks]:
    steps = CallbackSteps()
    with LocalAwsEndpoint(GlueService(), steps) as endpoint:
        yield SageMakerCallbacks(steps=steps, client=boto_client("sagemaker", endpoint.url))


@pytest.fixture
def retrier() -> Retrier:
    return Retrier(policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.0), sleep=lambda _: None)


def summary() -> Any:
    return parse_report(json.dumps(REPORT))


def new_token() -> str:
    return f"Tok{next(_table_numbers):07d}"


def create_request(
    store: ApprovalStore, sagemaker: SageMakerCallbacks, *, token: str | None = None, hours: int = 72, now: int = NOW
) -> tuple[str, str]:
    """A pending request whose step waits in the emulator; returns (token, link reference)."""
    token = token or new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)
    created = store.create(
        token=token,
        execution_arn=EXECUTION_ARN,
        report_uri=REPORT_URI,
        summary=summary(),
        now=now,
        expires_at=now + hours * 3600,
    )
    assert created.reference is not None
    return token, created.reference


# -- the notifier's surroundings: the report in S3 and the approvers topic -----------------------------
BUCKET = "artifacts"
REPORT_KEY = "pipeline-executions/abc123def456/evaluation/evaluation.json"


class Mailbox:
    """An SQS queue subscribed to the approvers topic: what SNS delivers, envelope and all."""

    def __init__(self, server: DynamoDbServer, sns: Any = None) -> None:
        self.sns = sns or boto_client("sns", server.endpoint_url)
        self.sqs = boto_client("sqs", server.endpoint_url)
        self.topic_arn = self.sns.create_topic(Name=f"approvers-{new_token()}")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName=f"mail-{new_token()}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

    def messages(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]


@pytest.fixture
def mailbox(dynamodb_server: DynamoDbServer) -> Mailbox:
    return Mailbox(dynamodb_server)


@pytest.fixture
def s3(dynamodb_server: DynamoDbServer) -> Any:
    client = boto_client("s3", dynamodb_server.endpoint_url)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=REPORT_KEY, Body=json.dumps(REPORT).encode())
    return client


def message(token: str, **changes: Any) -> str:
    body: dict[str, Any] = {
        "token": token,
        "pipelineExecutionArn": EXECUTION_ARN,
        "arguments": {
            "report_uri": f"s3://{BUCKET}/{REPORT_KEY}",
            "rows_scored": "1488",
            "anomaly_events": "2",
            "cutoff": "1.8",
        },
    }
    body.update(changes)
    return json.dumps(body)


# -- faults below botocore (as tests/unit/callback/faults_below_botocore.py does for the JSON APIs) ---------
_THROTTLED_BODIES = {
    # SNS speaks the query protocol: an XML error document.
    "query": (
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>",
        "text/xml",
    ),
    "json": (b'{"__type":"ThrottlingException","message":"Rate exceeded"}', "application/x-amz-json-1.1"),
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class WireFaults:
    """Breaks an operation's HTTP exchanges where botocore hands them to the network, so botocore's own
    serialization, retries and error parsing run: "throttled" answers 400 Throttling, "not-sent" raises
    the connection error botocore raises when the endpoint cannot be reached."""

    client: Any
    broken: dict[str, str] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        service_id = self.client.meta.service_model.service_id.hyphenize()
        self.client.meta.events.register(f"before-send.{service_id}", self._before_send)

    def fail(self, operation: str, kind: str) -> WireFaults:
        self.broken[operation] = kind
        return self

    def heal(self) -> None:
        self.broken.clear()

    def _before_send(self, request: Any, **_: Any) -> Any:
        protocol = self.client.meta.service_model.protocol
        if protocol == "json":
            target = request.headers.get("X-Amz-Target", b"")
            operation = (target.decode() if isinstance(target, bytes) else str(target)).split(".")[-1]
        else:
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            operation = parse_qs(body).get("Action", [""])[0]
        self.attempts.append(operation)
        kind = self.broken.get(operation)
        if kind is None:
            return None
        if kind == "not-sent":
            raise EndpointConnectionError(endpoint_url=request.url)
        data, content_type = _THROTTLED_BODIES[protocol]
        return AWSResponse(request.url, 400, {"Content-Type": content_type}, _Body(data))

    def count(self, operation: str) -> int:
        return self.attempts.count(operation)


@pytest.fixture
def botocore_does_not_really_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own retry backoff sleeps through botocore.endpoint's time.sleep; make it instant."""
    import time

    import botocore.endpoint

    class InstantTime:
        def __getattr__(self, name: str) -> Any:
            return (lambda _seconds: None) if name == "sleep" else getattr(time, name)

    monkeypatch.setattr(botocore.endpoint, "time", InstantTime())
