"""Helpers and fixtures for the callback-step tests (a unique module name, so no clash with other test folders)."""

from __future__ import annotations

import copy
import importlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline_callback.retry import Retrier, RetryPolicy

EVENTS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "events"
TOKEN = "Ab3dE5gH9k"
REGION = "us-east-1"
# Every logger the code under test writes to (stdlib loggers and the Powertools services).
LOGGER_NAMES = (
    "pipeline_callback",
    "callback_handler",
    "task_watchdog",
    "glue_completion",
    "fargate_task",
    "sagemaker-callback-handler",
    "prep-task-watchdog",
    "prep-glue-completion",
)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so no test can reach real AWS."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_GLUE", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class StubbedClient:
    client: Any
    stub: Stubber


def _stubbed(service: str) -> Iterator[StubbedClient]:
    client = boto3.client(service, region_name=REGION)
    with Stubber(client) as stub:
        yield StubbedClient(client, stub)
        # Every response a test queued must have been used: nothing silently skipped.
        stub.assert_no_pending_responses()


@pytest.fixture
def sagemaker() -> Iterator[StubbedClient]:
    yield from _stubbed("sagemaker")


@pytest.fixture
def glue() -> Iterator[StubbedClient]:
    yield from _stubbed("glue")


@pytest.fixture
def ecs() -> Iterator[StubbedClient]:
    yield from _stubbed("ecs")


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def retrier(sleep: RecordingSleep) -> Retrier:
    """Retries like production but never sleeps; jitter fixed at the maximum for predictable delays."""
    return Retrier(policy=RetryPolicy(), sleep=sleep, random=lambda: 1.0)


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def contains(self, text: str, level: int = logging.DEBUG) -> bool:
        return any(text in message for message in self.messages(level))


@pytest.fixture
def logs() -> Iterator[LogRecords]:
    """Captures log records straight from our loggers (Powertools stops them propagating to the root)."""
    handler = LogRecords()
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    previous_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, previous_levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass(frozen=True)
class LambdaContextStub:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> LambdaContextStub:
    return LambdaContextStub()


@pytest.fixture
def import_handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import a handler module afresh under the given environment (its cold start runs again)."""

    def _import(module_name: str, environment: dict[str, str]) -> ModuleType:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop(module_name, None)
        return importlib.import_module(module_name)

    return _import


def sqs_event(*bodies: str) -> dict[str, Any]:
    """The sample SQS event, with one record per body (message ids made unique)."""
    sample = load_event("sqs-lambda-event.json")
    template = sample["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"{template['messageId'][:-2]}{index:02d}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


# -- the token table on a real DynamoDB API (moto's server on loopback) --------------------------
class FakeClock:
    """Epoch seconds that tests move forward by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def dynamodb_endpoint() -> Iterator[str]:
    """The process's loopback DynamoDB, held for one test (it resets when its last user leaves)."""
    from local_mode.dynamodb_server import loopback_dynamodb

    with loopback_dynamodb() as server:
        yield server.endpoint_url


@pytest.fixture
def dynamodb(dynamodb_endpoint: str) -> Any:
    from pipeline_callback.clients import client_config

    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=dynamodb_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config("dynamodb"),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def token_table(dynamodb: Any) -> str:
    """A fresh, empty callback-token table for each test (one shared server)."""
    import uuid

    from local_mode.token_table import create_token_table

    name = f"callback-tokens-{uuid.uuid4().hex[:12]}"
    create_token_table(dynamodb, name)
    return name


@pytest.fixture
def records(dynamodb: Any, token_table: str, clock: FakeClock) -> Any:
    from pipeline_callback.token_records import TokenRecords

    return TokenRecords(dynamodb, token_table, ttl_seconds=30 * 86400, deadline_seconds=3 * 3600, clock=clock)


def record_environment(table_name: str) -> dict[str, str]:
    """What the constructs put in each function's environment for the token table."""
    return {
        "CALLBACK_TABLE_NAME": table_name,
        "CALLBACK_DEADLINE_SECONDS": "10800",
        "CALLBACK_RECORD_TTL_DAYS": "30",
        "START_LEASE_SECONDS": "120",
    }
