"""Helpers and fixtures for the ml_pipeline tests (a unique module name, so no clash with other test folders)."""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app_config import PipelineConfig
from ml_pipeline.cli import Output
from ml_pipeline.definition import PipelineSettings, pipeline_definition

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
PIPELINE_NAME = "taxi-anomaly-dev"
# Every variable that could give boto3 credentials, a region or a profile.
AWS_ENVIRONMENT_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
    "SAGEMAKER_VALIDATE_ROLE",
)


def placeholder_settings(**pipeline_changes: Any) -> PipelineSettings:
    """What the CDK stack passes: Fn::Sub placeholders for the role, queue and buckets."""
    return PipelineSettings.with_placeholders(PIPELINE_NAME, REGION, PipelineConfig(**pipeline_changes))


@functools.cache
def generated_definition(settings: PipelineSettings) -> str:
    """Generation takes seconds; settings are frozen (hashable), so each one is generated once."""
    return pipeline_definition(settings)


def parsed_definition(settings: PipelineSettings) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(generated_definition(settings))
    return parsed


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [candidate for candidate in definition["Steps"] if candidate["Name"] == name]
    assert len(matches) == 1, f"expected exactly one step named {name}"
    return matches[0]


def get(reference: str) -> dict[str, str]:
    """A pipeline `Get` expression, as it appears in the definition."""
    return {"Get": reference}


def referenced_steps(node: Any) -> set[str]:
    """Names of the steps whose properties `node` reads (`{"Get": "Steps.<name>...."}`)."""
    if isinstance(node, dict):
        reference = node.get("Get")
        if isinstance(reference, str) and reference.startswith("Steps."):
            return {reference.split(".")[1]}
        return set().union(*(referenced_steps(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(referenced_steps(value) for value in node))
    return set()


@dataclass
class ConnectionAttempts:
    """Every socket connection attempted while installed; the SDK swallows some errors, so we record."""

    addresses: list[Any] = field(default_factory=list)


@pytest.fixture
def no_aws_and_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ConnectionAttempts:
    """No credentials, region or profile anywhere, and any network connection attempt fails (and is recorded)."""
    for name in AWS_ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    attempts = ConnectionAttempts()

    def refuse(_socket: socket.socket, address: Any, *_args: Any) -> Any:
        attempts.addresses.append(address)
        raise ConnectionRefusedError(f"test forbids network access (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


# ---- CLI --------------------------------------------------------------------------------------

FIXED_NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
EXECUTION_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{PIPELINE_NAME}/execution/abc123def456"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{PIPELINE_NAME}"
DEPLOYED_PARAMETER_NAMES = ("InputLocation", "OutputLocation", "NumTrees")


@dataclass
class StubbedClient:
    client: Any
    stub: Stubber


def _stubbed(client: Any) -> Iterator[StubbedClient]:
    with Stubber(client) as stub:
        yield StubbedClient(client, stub)
        # Every response a test queued must have been used: nothing silently skipped.
        stub.assert_no_pending_responses()


@pytest.fixture
def sagemaker() -> Iterator[StubbedClient]:
    yield from _stubbed(
        boto3.client("sagemaker", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    )


@pytest.fixture
def cloudformation() -> Iterator[StubbedClient]:
    yield from _stubbed(
        boto3.client("cloudformation", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    )


@dataclass
class RecordingSleep:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@dataclass
class CapturedOutput:
    output: Output
    stream: StringIO

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


@pytest.fixture
def captured() -> CapturedOutput:
    stream = StringIO()
    return CapturedOutput(Output(stream=stream, clock=lambda: FIXED_NOW), stream)


def expect_stack_outputs(
    cloudformation: StubbedClient, *, env_name: str = "dev", outputs: dict[str, str] | None = None
) -> None:
    stack_name = f"taxi-anomaly-{env_name}-pipeline"
    stack_outputs = {"PipelineName": PIPELINE_NAME} if outputs is None else outputs
    cloudformation.stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": stack_name,
                    "CreationTime": FIXED_NOW,
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in stack_outputs.items()],
                }
            ]
        },
        {"StackName": stack_name},
    )


def expect_deployed_parameters(sagemaker: StubbedClient) -> None:
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": name} for name in DEPLOYED_PARAMETER_NAMES]}
    sagemaker.stub.add_response(
        "describe_pipeline",
        {"PipelineName": PIPELINE_NAME, "PipelineDefinition": json.dumps(definition)},
        {"PipelineName": PIPELINE_NAME},
    )


def expect_poll(sagemaker: StubbedClient, execution_status: str, steps: list[dict[str, Any]], **execution: Any) -> None:
    """One round of watching: the execution's status, then its steps."""
    sagemaker.stub.add_response(
        "describe_pipeline_execution",
        {
            "PipelineArn": PIPELINE_ARN,
            "PipelineExecutionArn": EXECUTION_ARN,
            "PipelineExecutionStatus": execution_status,
            "CreationTime": FIXED_NOW,
            **execution,
        },
        {"PipelineExecutionArn": EXECUTION_ARN},
    )
    sagemaker.stub.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": steps},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"},
    )


def step_state(name: str, status: str, failure_reason: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"StepName": name, "StepStatus": status, "StartTime": FIXED_NOW}
    if failure_reason:
        state["FailureReason"] = failure_reason
    return state
