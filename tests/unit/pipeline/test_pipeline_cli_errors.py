"""The operator CLI's region and errors: the environment's region by default, one actionable line per AWS error."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from botocore.stub import Stubber

from ml_pipeline.cli import (
    EXIT_ERROR,
    CliError,
    describe_aws_error,
    environment_region,
    main,
    resolve_pipeline_name,
)

ENVIRONMENTS = {"dev": {"region": "us-east-1"}, "prod": {"region": "eu-west-1"}, "lab": {"region": None}}


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with no AWS credentials or region anywhere (and no instance metadata to ask)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_the_environments_region_is_used_unless_told_otherwise() -> None:
    assert environment_region("prod", None, ENVIRONMENTS) == "eu-west-1"
    assert environment_region("prod", "ap-south-1", ENVIRONMENTS) == "ap-south-1"
    assert environment_region("lab", None, ENVIRONMENTS) is None  # then boto3's own configuration decides


def test_an_unknown_environment_lists_the_valid_ones() -> None:
    with pytest.raises(CliError, match=r"unknown environment 'qa'; valid environments: dev, lab, prod"):
        environment_region("qa", None, ENVIRONMENTS)


def test_no_credentials_is_one_line_that_says_what_to_do(
    no_aws_configuration: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no credentials and no region configured (the region comes from cdk.json's dev environment)
    # When listing executions
    exit_code = main(["list", "--env", "dev"])

    # Then one line, no traceback
    assert exit_code == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == (
        "error: no AWS credentials found: run `aws configure` (or `aws sso login` with AWS_PROFILE set) and try again\n"
    )


def test_an_unknown_environment_is_one_line(no_aws_configuration: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--env", "staging"]) == EXIT_ERROR
    assert capsys.readouterr().err == "error: unknown environment 'staging'; valid environments: dev, prod\n"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_list_limit_outside_the_apis_range_is_refused_before_any_call(
    limit: str, no_aws_configuration: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["list", "--env", "dev", "--limit", limit])
    assert exited.value.code == 2
    assert f"argument --limit: must be a whole number from 1 to 100, got {limit!r}" in capsys.readouterr().err


def test_a_stack_missing_in_the_region_names_the_region_and_what_to_do() -> None:
    # Given CloudFormation in eu-central-1, where the stack is not deployed
    client = boto3.client(
        "cloudformation", region_name="eu-central-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id taxi-anomaly-dev-pipeline does not exist"
        )
        # When / Then
        with pytest.raises(CliError) as raised:
            resolve_pipeline_name(client, "dev")
    assert str(raised.value) == (
        "stack taxi-anomaly-dev-pipeline does not exist in eu-central-1: deploy it with `make deploy ENV=dev`, "
        "or pass --region with the region it is deployed in"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoRegionError(), "no AWS region: pass --region, or set the environment's region in cdk.json"),
        (NoCredentialsError(), "no AWS credentials found"),
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "DescribeStacks"),
            "your AWS credentials have expired",
        ),
        (
            ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "bad"}}, "DescribeStacks"),
            "AWS rejected your credentials (InvalidClientTokenId)",
        ),
        (
            ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "StartPipelineExecution"
            ),
            "access denied for StartPipelineExecution: your credentials lack that permission (not allowed)",
        ),
        (
            ClientError({"Error": {"Code": "ResourceNotFound", "Message": "no such\npipeline"}}, "DescribePipeline"),
            "DescribePipeline failed: ResourceNotFound: no such\npipeline",
        ),
        (EndpointConnectionError(endpoint_url="https://x"), "cannot reach AWS in region mars-1"),
    ],
)
def test_aws_errors_become_one_actionable_line(error: Exception, expected: str) -> None:
    assert describe_aws_error(error, "mars-1").startswith(expected)
