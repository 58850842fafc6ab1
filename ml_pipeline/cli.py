"""Operate the deployed pipeline: `python -m ml_pipeline {start,list,describe} --env dev ...`.

The pipeline name is read from the pipeline stack's `PipelineName` output, so nothing here
hard-codes it. The command functions take their AWS clients, clock and sleep as arguments
(tests pass stubs); `main` builds the real boto3 clients, in the environment's region from
`cdk.json` unless `--region` says otherwise, and turns every AWS error into one line that says
what to do (:func:`describe_aws_error`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from app_config import stack_name

PIPELINE_NAME_OUTPUT_KEY = "PipelineName"
DEFAULT_POLL_SECONDS = 30
DEFAULT_LIST_LIMIT = 10
# ListPipelineExecutions MaxResults: "Valid Range: Minimum value of 1. Maximum value of 100." (SageMaker API
# reference, ListPipelineExecutions).
MAX_LIST_LIMIT = 100
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
# PipelineExecutionStatus values after which nothing changes any more.
SUCCEEDED = "Succeeded"
UNSUCCESSFUL_END_STATES = frozenset({"Failed", "Stopped"})

EXIT_OK = 0
EXIT_EXECUTION_UNSUCCESSFUL = 1
EXIT_ERROR = 2

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


class CliError(Exception):
    """A problem the operator can fix (bad argument, missing stack output); printed without a traceback."""


def pipeline_stack_name(env_name: str) -> str:
    """The pipeline stack's name, by the same scheme app.py names it."""
    return stack_name(env_name, "pipeline")


@dataclass(frozen=True)
class Output:
    """Where and how lines are printed: one timestamped line per event."""

    stream: TextIO
    clock: Clock

    def line(self, text: str) -> None:
        print(f"{self.clock().strftime('%Y-%m-%d %H:%M:%S')}Z  {text}", file=self.stream, flush=True)


def environment_region(
    env_name: str | None, explicit_region: str | None, environments: Mapping[str, Any]
) -> str | None:
    """--region if given, else the environment's `region` in cdk.json (None: boto3's own configuration)."""
    if env_name is None:
        return explicit_region
    if env_name not in environments:
        raise CliError(f"unknown environment {env_name!r}; valid environments: {', '.join(sorted(environments))}")
    if explicit_region:
        return explicit_region
    region = environments[env_name].get("region")
    return str(region) if region else None


def cdk_environments(path: Path = CDK_JSON) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["context"]["environments"])
    except (OSError, ValueError, KeyError) as error:
        raise CliError(f"cannot read the environments from {path}: {error}") from None


def resolve_pipeline_name(cloudformation: Any, env_name: str) -> str:
    from botocore.exceptions import ClientError

    stack_name = pipeline_stack_name(env_name)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if _error_code(error) == "ValidationError" and "does not exist" in str(error):
            region = cloudformation.meta.region_name
            raise CliError(
                f"stack {stack_name} does not exist in {region}: deploy it with `make deploy ENV={env_name}`, "
                "or pass --region with the region it is deployed in"
            ) from None
        raise CliError(f"cannot read stack {stack_name}: {describe_aws_error(error)}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    if PIPELINE_NAME_OUTPUT_KEY not in outputs:
        raise CliError(f"stack {stack_name} has no {PIPELINE_NAME_OUTPUT_KEY} output; is it deployed?")
    return str(outputs[PIPELINE_NAME_OUTPUT_KEY])


def parse_parameter_assignments(assignments: Sequence[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise CliError(f"--param {assignment!r} must look like Name=Value")
        parameters[name] = value
    return parameters


def check_hyperparameter_values(parameters: dict[str, str]) -> None:
    """--param values for RCF hyperparameters must be in RCF's documented ranges (else the training job fails)."""
    from ml_pipeline.definition import HYPERPARAMETER_OF_PARAMETER
    from ml_pipeline.rcf_hyperparameters import HyperparameterError, check_rcf_hyperparameter

    for name, value in parameters.items():
        if name in HYPERPARAMETER_OF_PARAMETER:
            try:
                check_rcf_hyperparameter(HYPERPARAMETER_OF_PARAMETER[name], value, source=f"--param {name}")
            except HyperparameterError as error:
                raise CliError(str(error)) from None


def pipeline_parameter_names(sagemaker: Any, pipeline_name: str) -> list[str]:
    """The parameter names the deployed definition declares (the source of truth, not this code)."""
    definition = json.loads(sagemaker.describe_pipeline(PipelineName=pipeline_name)["PipelineDefinition"])
    return [parameter["Name"] for parameter in definition.get("Parameters", [])]


def start_command(
    *,
    env_name: str,
    parameters: dict[str, str],
    wait: bool,
    poll_seconds: float,
    cloudformation: Any,
    sagemaker: Any,
    sleep: Sleep,
    output: Output,
) -> int:
    pipeline_name = resolve_pipeline_name(cloudformation, env_name)
    valid_names = pipeline_parameter_names(sagemaker, pipeline_name)
    unknown = sorted(set(parameters) - set(valid_names))
    if unknown:
        raise CliError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(valid_names)}")
    check_hyperparameter_values(parameters)
    response = sagemaker.start_pipeline_execution(
        PipelineName=pipeline_name,
        PipelineParameters=[{"Name": name, "Value": value} for name, value in parameters.items()],
    )
    execution_arn = response["PipelineExecutionArn"]
    output.line(f"started {execution_arn}")
    if not wait:
        return EXIT_OK
    final_status = watch_execution(sagemaker, execution_arn, poll_seconds=poll_seconds, sleep=sleep, output=output)
    return EXIT_OK if final_status == SUCCEEDED else EXIT_EXECUTION_UNSUCCESSFUL


def watch_execution(sagemaker: Any, execution_arn: str, *, poll_seconds: float, sleep: Sleep, output: Output) -> str:
    """Print a line whenever a step changes state, until the execution ends; returns its final status."""
    reported_step_states: dict[str, str] = {}
    while True:
        # Describe before listing steps, so the steps are never older than the status we act on.
        execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = execution["PipelineExecutionStatus"]
        for step in list_execution_steps(sagemaker, execution_arn):
            name, step_status = step["StepName"], step["StepStatus"]
            if reported_step_states.get(name) != step_status:
                reported_step_states[name] = step_status
                output.line(_describe_step(step))
        if status == SUCCEEDED or status in UNSUCCESSFUL_END_STATES:
            output.line(_describe_execution_end(execution))
            return str(status)
        sleep(poll_seconds)


def list_execution_steps(sagemaker: Any, execution_arn: str) -> list[dict[str, Any]]:
    """All steps, oldest first."""
    steps: list[dict[str, Any]] = []
    request: dict[str, Any] = {"PipelineExecutionArn": execution_arn, "SortOrder": "Ascending"}
    while True:
        page = sagemaker.list_pipeline_execution_steps(**request)
        steps.extend(page.get("PipelineExecutionSteps", []))
        if not page.get("NextToken"):
            return steps
        request["NextToken"] = page["NextToken"]


def list_command(*, env_name: str, limit: int, cloudformation: Any, sagemaker: Any, output: Output) -> int:
    pipeline_name = resolve_pipeline_name(cloudformation, env_name)
    summaries = sagemaker.list_pipeline_executions(
        PipelineName=pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
    )["PipelineExecutionSummaries"]
    output.line(f"{len(summaries)} most recent execution(s) of {pipeline_name}")
    for summary in summaries:
        print(
            f"  {_format_time(summary.get('StartTime'))}  {summary.get('PipelineExecutionStatus', '?'):<10}"
            f"  {summary['PipelineExecutionArn']}",
            file=output.stream,
        )
    return EXIT_OK


def describe_command(*, env_name: str, execution_arn: str, cloudformation: Any, sagemaker: Any, output: Output) -> int:
    pipeline_name = resolve_pipeline_name(cloudformation, env_name)
    execution = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    # Pipeline ARNs carry the name lower-cased.
    execution_pipeline = str(execution.get("PipelineArn", "")).rsplit("/", 1)[-1]
    if execution_pipeline.lower() != pipeline_name.lower():
        raise CliError(
            f"{execution_arn} belongs to pipeline {execution_pipeline!r}, not {env_name}'s {pipeline_name!r}"
        )
    status = execution["PipelineExecutionStatus"]
    output.line(f"{execution_arn}: {status} (started {_format_time(execution.get('CreationTime'))})")
    if execution.get("FailureReason"):
        print(f"  failure reason: {execution['FailureReason']}", file=output.stream)
    for step in list_execution_steps(sagemaker, execution_arn):
        print(
            f"  {step['StepName']:<12} {step['StepStatus']:<10} {_format_time(step.get('StartTime'))}"
            f" -> {_format_time(step.get('EndTime'))}",
            file=output.stream,
        )
        if step.get("FailureReason"):
            print(f"      failure reason: {step['FailureReason']}", file=output.stream)
    return EXIT_EXECUTION_UNSUCCESSFUL if status in UNSUCCESSFUL_END_STATES else EXIT_OK


def _describe_step(step: dict[str, Any]) -> str:
    text = f"step {step['StepName']}: {step['StepStatus']}"
    if step.get("FailureReason"):
        text += f" - {step['FailureReason']}"
    return text


def _describe_execution_end(execution: dict[str, Any]) -> str:
    text = f"execution {execution['PipelineExecutionStatus']}"
    if execution.get("FailureReason"):
        text += f" - {execution['FailureReason']}"
    return text


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe_aws_error(error: Exception, region: str | None = None) -> str:
    """One line that says what went wrong with an AWS call and what to do about it."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        TokenRetrievalError,
    )

    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region, or set the environment's region in cdk.json"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found: run `aws configure` (or `aws sso login` with AWS_PROFILE set) and try again"
    if isinstance(error, TokenRetrievalError):
        return f"your AWS SSO session has expired: run `aws sso login` and try again ({error})"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS in region {region or '?'}: check the region name and your network ({error})"
    if isinstance(error, ClientError):
        code = _error_code(error)
        message = str(error.response.get("Error", {}).get("Message", "")).strip()
        operation = error.operation_name
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return f"your AWS credentials have expired: refresh them (e.g. `aws sso login`) and try again ({code})"
        if code in ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"):
            return f"AWS rejected your credentials ({code}): check `aws configure` or AWS_PROFILE"
        if code in ("AccessDenied", "AccessDeniedException"):
            return f"access denied for {operation}: your credentials lack that permission ({message})"
        return f"{operation} failed: {code}: {message}"
    return " ".join(str(error).split())


def _format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline", description="Operate the deployed pipeline.")
    parser.add_argument(
        "--region", help="AWS region (default: the environment's region in cdk.json, else the AWS configuration)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="start an execution")
    start.add_argument("--env", required=True, help="environment name, e.g. dev")
    start.add_argument(
        "--param", action="append", default=[], metavar="Name=Value", help="pipeline parameter (repeatable)"
    )
    start.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    start.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS)

    listing = commands.add_parser("list", help="show recent executions")
    listing.add_argument("--env", required=True)
    listing.add_argument(
        "--limit",
        type=_list_limit,
        default=DEFAULT_LIST_LIMIT,
        help=f"how many executions (1-{MAX_LIST_LIMIT}, default {DEFAULT_LIST_LIMIT})",
    )

    describe = commands.add_parser("describe", help="show one execution with its steps")
    describe.add_argument("--env", required=True)
    describe.add_argument("execution_arn")

    pending = commands.add_parser("pending", help="show runs waiting for approval")
    pending.add_argument("--env", required=True)
    for verb in ("approve", "reject"):
        decision = commands.add_parser(verb, help=f"{verb} a run waiting in ApproveResults (single use, as the page)")
        decision.add_argument("--env", required=True)
        decision.add_argument("execution_arn")
        decision.add_argument("--comment", default="", required=verb == "reject", help="recorded with the decision")
    return parser


def _approval_command(arguments: argparse.Namespace, session: Any, cloudformation: Any, sagemaker: Any) -> int:
    from approval.store import ApprovalStore
    from ml_pipeline.approval_cli import decide_command, now_epoch, pending_command, resolve_table_name
    from pipeline_callback.clients import client_config
    from pipeline_callback.retry import Retrier

    dynamodb = session.client("dynamodb", config=client_config("dynamodb"))
    store = ApprovalStore(dynamodb, resolve_table_name(cloudformation, arguments.env))

    def print_line(text: str) -> None:
        print(text, flush=True)

    if arguments.command == "pending":
        return pending_command(store=store, now=now_epoch(), print_line=print_line)
    return decide_command(
        decision=arguments.command,
        execution_arn=arguments.execution_arn,
        comment=arguments.comment,
        store=store,
        sagemaker=sagemaker,
        sts=session.client("sts"),
        retrier=Retrier(),
        now=now_epoch(),
        print_line=print_line,
    )


def _list_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIST_LIMIT}, got {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    output = Output(stream=sys.stdout, clock=lambda: datetime.now(UTC))
    from ml_pipeline.approval_cli import ApprovalCliError

    region: str | None = None
    try:
        region = environment_region(getattr(arguments, "env", None), arguments.region, cdk_environments())
        session = boto3.Session(region_name=region)
        region = session.region_name
        cloudformation = session.client("cloudformation")
        sagemaker = session.client("sagemaker")
        if arguments.command in ("pending", "approve", "reject"):
            return _approval_command(arguments, session, cloudformation, sagemaker)
        if arguments.command == "start":
            return start_command(
                env_name=arguments.env,
                parameters=parse_parameter_assignments(arguments.param),
                wait=arguments.wait,
                poll_seconds=arguments.poll_seconds,
                cloudformation=cloudformation,
                sagemaker=sagemaker,
                sleep=time.sleep,
                output=output,
            )
        if arguments.command == "list":
            return list_command(
                env_name=arguments.env,
                limit=arguments.limit,
                cloudformation=cloudformation,
                sagemaker=sagemaker,
                output=output,
            )
        return describe_command(
            env_name=arguments.env,
            execution_arn=arguments.execution_arn,
            cloudformation=cloudformation,
            sagemaker=sagemaker,
            output=output,
        )
    except (CliError, ApprovalCliError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as error:
        print(f"error: {describe_aws_error(error, region)}", file=sys.stderr)
        return EXIT_ERROR
