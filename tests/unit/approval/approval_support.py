"""Fixtures for the approval tests: a real DynamoDB API (moto server on loopback) and SageMaker's callback API
(the local mode's loopback emulator), both reached through ordinary boto3 clients."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

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
