"""Operate the deployed pipeline: `python -m ml_pipeline {start,list,describe} --env dev ...`.

The pipeline name is read from the pipeline stack's `PipelineName` output, so nothing here
hard-codes it. The command functions take their AWS clients, clock and sleep as arguments
(tests pass stubs); `main` builds the real boto3 clients.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from app_config import stack_name

PIPELINE_NAME_OUTPUT_KEY = "PipelineName"
DEFAULT_POLL_SECONDS = 30
DEFAULT_LIST_LIMIT = 10
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


def resolve_pipeline_name(cloudformation: Any, env_name: str) -> str:
    from botocore.exceptions import ClientError

    stack_name = pipeline_stack_name(env_name)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise CliError(f"cannot read stack {stack_name}: {error}") from error
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


def _format_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline", description="Operate the deployed pipeline.")
    parser.add_argument("--region", help="AWS region (default: from the AWS configuration)")
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
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT)

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
    from pipeline_callback.retry import Retrier

    store = ApprovalStore(session.client("dynamodb"), resolve_table_name(cloudformation, arguments.env))

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


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(region_name=arguments.region)
    cloudformation = session.client("cloudformation")
    sagemaker = session.client("sagemaker")
    output = Output(stream=sys.stdout, clock=lambda: datetime.now(UTC))
    from ml_pipeline.approval_cli import ApprovalCliError

    try:
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
    except (CliError, ApprovalCliError, ClientError, BotoCoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
