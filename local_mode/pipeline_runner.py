"""Executes a SageMaker pipeline definition (the JSON CreatePipeline takes) step by step, locally.

The interpreter is generic: it orders steps by their `Get Steps.<name>...` references and DependsOn,
evaluates each step's arguments (`Get` of Parameters / Execution variables / step properties,
`Std:Join`), and hands them to the executor registered for the step's type. Each executor returns the
step's properties (shaped like the Describe* response SageMaker reads them from), which later `Get`
references resolve against. Anything it cannot execute fails with a message naming it.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_mode.progress import Progress


class DefinitionError(ValueError):
    """The definition uses a step type, expression or property reference local mode cannot execute."""


class StepFailedError(Exception):
    """A step ran and failed; `reason` is its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ExecutionContext:
    pipeline_name: str
    execution_id: str
    execution_arn: str
    start_time: datetime
    parameters: dict[str, Any]
    step_types: dict[str, str]
    step_properties: dict[str, dict[str, Any]] = field(default_factory=dict)


StepExecutor = Callable[[str, dict[str, Any], dict[str, Any], ExecutionContext], dict[str, Any]]
"""(step name, evaluated Arguments, the raw step, context) -> the step's properties."""


@dataclass
class StepRecord:
    """One row of ListPipelineExecutionSteps."""

    name: str
    step_type: str
    status: str = "NotStarted"
    started: float = 0.0
    ended: float = 0.0
    failure_reason: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended - self.started)

    def as_api(self) -> dict[str, Any]:
        row: dict[str, Any] = {"StepName": self.name, "StepType": self.step_type, "StepStatus": self.status}
        if self.started:
            row["StartTime"] = datetime.fromtimestamp(self.started, UTC).isoformat()
        if self.ended:
            row["EndTime"] = datetime.fromtimestamp(self.ended, UTC).isoformat()
        if self.failure_reason:
            row["FailureReason"] = self.failure_reason
        return row


@dataclass
class PipelineExecution:
    arn: str
    status: str
    steps: list[StepRecord]
    failure_reason: str = ""

    @property
    def failed_step(self) -> StepRecord | None:
        return next((step for step in self.steps if step.status == "Failed"), None)

    def as_api(self) -> dict[str, Any]:
        """DescribePipelineExecution + ListPipelineExecutionSteps, roughly as the console shows them."""
        described: dict[str, Any] = {
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionSteps": [step.as_api() for step in reversed(self.steps) if step.status != "NotStarted"],
        }
        if self.failure_reason:
            described["FailureReason"] = self.failure_reason
        return described


def new_execution_id() -> str:
    """SageMaker execution ids are 12 lowercase letters and digits."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


# `Steps.Name.A.B['key'][0]`: a step name, then attribute, ['key'] and [index] accessors.
_ACCESSOR = re.compile(r"\.(?P<attribute>[A-Za-z_][A-Za-z0-9_]*)|\['(?P<key>[^']*)'\]|\[(?P<index>\d+)\]")


def parse_property_path(path: str) -> tuple[str, list[str | int]]:
    """`Steps.PrepareData.OutputParameters['s3_data_out']` -> ('PrepareData', ['OutputParameters', 's3_data_out'])."""
    match = re.match(r"^Steps\.(?P<step>[A-Za-z0-9\-_]+)", path)
    if not match:
        raise DefinitionError(f"property reference {path!r} does not start with Steps.<step name>")
    accessors: list[str | int] = []
    position = match.end()
    while position < len(path):
        accessor = _ACCESSOR.match(path, position)
        if not accessor:
            raise DefinitionError(f"cannot parse property reference {path!r} at {path[position:]!r}")
        if accessor.group("attribute") is not None:
            accessors.append(accessor.group("attribute"))
        elif accessor.group("key") is not None:
            accessors.append(accessor.group("key"))
        else:
            accessors.append(int(accessor.group("index")))
        position = accessor.end()
    if not accessors:
        raise DefinitionError(f"property reference {path!r} names a step but no property")
    return match.group("step"), accessors


def _is_expression(value: Mapping[str, Any]) -> bool:
    """A one-key object whose key is `Get` or a `Std:` function; anything else is a literal object."""
    if len(value) != 1:
        return False
    key = next(iter(value))
    return key == "Get" or key.startswith("Std:")


def evaluate(value: Any, context: ExecutionContext) -> Any:
    """Evaluate the definition's expressions inside `value` (recursively); literals are returned as they are."""
    if isinstance(value, list):
        return [evaluate(item, context) for item in value]
    if not isinstance(value, dict):
        return value
    if not _is_expression(value):
        return {key: evaluate(item, context) for key, item in value.items()}
    ((function, operand),) = value.items()
    if function == "Get":
        return _get(str(operand), context)
    if function == "Std:Join":
        separator = str(operand.get("On", ""))
        return separator.join(_as_text(evaluate(item, context)) for item in operand.get("Values", []))
    if function == "Std:JsonGet":
        return _json_get(operand, context)
    raise DefinitionError(
        f"expression {function!r} is not supported by local mode (supported: Get, Std:Join, Std:JsonGet)"
    )


def _json_get(operand: Any, context: ExecutionContext) -> Any:
    """`Std:JsonGet` of a processing step's property file: the file's JSON at a dotted path (`a.b[0].c`)."""
    if not isinstance(operand, dict) or "PropertyFile" not in operand or "Path" not in operand:
        raise DefinitionError(f"Std:JsonGet needs PropertyFile and Path, got {operand!r} (local mode)")
    document = evaluate(operand["PropertyFile"], context)
    path = str(operand["Path"])
    current: Any = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        key: str | int = int(part[1:-1]) if part.startswith("[") else part
        if not _has(current, key):
            raise StepFailedError(f"Std:JsonGet: the property file has no value at {path!r}")
        current = current[key]
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get(path: str, context: ExecutionContext) -> Any:
    if path.startswith("Parameters."):
        name = path[len("Parameters.") :]
        if name not in context.parameters:
            raise DefinitionError(f"{{'Get': '{path}'}}: the definition has no parameter {name!r}")
        return context.parameters[name]
    if path.startswith("Execution."):
        variables = {
            "PipelineExecutionId": context.execution_id,
            "PipelineExecutionArn": context.execution_arn,
            "PipelineName": context.pipeline_name,
            "PipelineArn": context.execution_arn.split("/execution/")[0],
            "StartDateTime": context.start_time.isoformat(),
            "CurrentDateTime": datetime.now(UTC).isoformat(),
        }
        name = path[len("Execution.") :]
        if name not in variables:
            raise DefinitionError(f"{{'Get': '{path}'}}: execution variable {name!r} is not supported by local mode")
        return variables[name]
    if path.startswith("Steps."):
        return _step_property(path, context)
    raise DefinitionError(f"{{'Get': '{path}'}} is not supported by local mode (Parameters., Execution., Steps.)")


def _step_property(path: str, context: ExecutionContext) -> Any:
    step_name, accessors = parse_property_path(path)
    if step_name not in context.step_types:
        raise DefinitionError(f"{{'Get': '{path}'}}: the definition has no step {step_name!r}")
    if step_name not in context.step_properties:
        raise DefinitionError(f"{{'Get': '{path}'}}: step {step_name!r} has not run yet")
    current: Any = context.step_properties[step_name]
    walked = f"Steps.{step_name}"
    for accessor in accessors:
        if _has(current, accessor):
            current = current[accessor]
        else:
            known = ", ".join(sorted(current)) if isinstance(current, dict) else type(current).__name__
            raise DefinitionError(
                f"{{'Get': '{path}'}}: property reference not supported by local mode: "
                f"{walked} ({context.step_types[step_name]} step) has no {accessor!r} (known: {known})"
            )
        walked += f".{accessor}" if isinstance(accessor, str) else f"[{accessor}]"
    return current


def _has(container: Any, accessor: str | int) -> bool:
    if isinstance(accessor, int):
        return isinstance(container, list) and accessor < len(container)
    return isinstance(container, dict) and accessor in container


def _referenced_steps(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*(_referenced_steps(item) for item in value)) if value else set()
    if isinstance(value, dict):
        if set(value) == {"Get"} and str(value["Get"]).startswith("Steps."):
            return {parse_property_path(str(value["Get"]))[0]}
        return set().union(*(_referenced_steps(item) for item in value.values())) if value else set()
    return set()


def execution_order(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in dependency order (data references and DependsOn), definition order among equals."""
    by_name = {step["Name"]: step for step in steps}
    dependencies: dict[str, set[str]] = {}
    for step in steps:
        needs = _referenced_steps(step) | set(step.get("DependsOn", []))
        needs.discard(step["Name"])
        unknown = needs - set(by_name)
        if unknown:
            raise DefinitionError(f"step {step['Name']!r} depends on unknown step(s) {', '.join(sorted(unknown))}")
        dependencies[step["Name"]] = needs
    ordered: list[dict[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = [step for step in steps if step["Name"] not in done and dependencies[step["Name"]] <= done]
        if not ready:
            cycle = sorted(set(by_name) - done)
            raise DefinitionError(f"steps {', '.join(cycle)} depend on each other in a cycle")
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


class PipelineRunner:
    """Runs one execution of a definition with the given step executors (one per step type)."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        executors: Mapping[str, StepExecutor],
        progress: Progress,
        *,
        pipeline_name: str,
        region: str,
        account_id: str,
    ) -> None:
        self.definition = definition
        self.executors = executors
        self.progress = progress
        self.pipeline_name = pipeline_name
        self.region = region
        self.account_id = account_id

    def validate(self) -> list[dict[str, Any]]:
        """Fail before running anything when a step type has no executor; returns the steps in order."""
        steps = list(self.definition.get("Steps", []))
        if not steps:
            raise DefinitionError("the pipeline definition has no steps")
        for step in steps:
            if step.get("Type") not in self.executors:
                raise DefinitionError(
                    f"step {step.get('Name')!r} has type {step.get('Type')!r}, which local mode cannot execute "
                    f"(supported step types: {', '.join(sorted(self.executors))})"
                )
        return execution_order(steps)

    def run(self, parameter_overrides: Mapping[str, Any] | None = None) -> PipelineExecution:
        ordered = self.validate()
        execution_id = new_execution_id()
        arn = (
            f"arn:aws:sagemaker:{self.region}:{self.account_id}:pipeline/{self.pipeline_name.lower()}"
            f"/execution/{execution_id}"
        )
        parameters = {item["Name"]: item.get("DefaultValue") for item in self.definition.get("Parameters", [])}
        unknown = set(parameter_overrides or {}) - set(parameters)
        if unknown:
            raise DefinitionError(f"unknown pipeline parameter(s): {', '.join(sorted(unknown))}")
        parameters.update(parameter_overrides or {})
        context = ExecutionContext(
            pipeline_name=self.pipeline_name,
            execution_id=execution_id,
            execution_arn=arn,
            start_time=datetime.now(UTC),
            parameters=parameters,
            step_types={step["Name"]: step["Type"] for step in ordered},
        )
        records = [StepRecord(step["Name"], step["Type"]) for step in ordered]
        self.progress.say(
            "pipeline",
            f"execution {execution_id} started ({len(ordered)} steps: "
            + " -> ".join(step["Name"] for step in ordered)
            + ")",
        )
        for step, record in zip(ordered, records, strict=True):
            record.status, record.started = "Executing", time.time()
            self.progress.say("pipeline", f"{record.name} ({record.step_type}) ... Executing")
            try:
                arguments = evaluate(step.get("Arguments", {}), context)
                record.properties = self.executors[record.step_type](record.name, arguments, step, context)
            except Exception as error:
                reason = error.reason if isinstance(error, StepFailedError) else f"{type(error).__name__}: {error}"
                record.status, record.ended, record.failure_reason = "Failed", time.time(), reason
                self.progress.say(
                    "pipeline", f"{record.name} ({record.step_type}) ... Failed after {record.seconds:.1f}s"
                )
                self.progress.say("pipeline", f"  FailureReason: {reason}")
                return PipelineExecution(
                    arn=arn, status="Failed", steps=records, failure_reason="Step failure: One or more steps failed."
                )
            context.step_properties[record.name] = record.properties
            record.status, record.ended = "Succeeded", time.time()
            self.progress.say("pipeline", f"{record.name} ({record.step_type}) ... Succeeded in {record.seconds:.1f}s")
        self.progress.say("pipeline", f"execution {execution_id} Succeeded")
        return PipelineExecution(arn=arn, status="Succeeded", steps=records)
