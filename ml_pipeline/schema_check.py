"""Validate the generated pipeline definition against AWS's published pipeline-definition JSON schema.

`make check-pipeline-schema SCHEMA=/path/to/pipeline-definition.schema.json` (or
`python -m ml_pipeline.schema_check --schema PATH [--env dev|prod] [--definition FILE]`).

The schema is not part of this repository (its repository has no licence), so it is given by path.
Each step is validated against the schema definition whose `Type` enum names the step's type, and the
rest of the definition against the schema's top level. Every error is a finding, except those that
match one of the schema's own known gaps below (KNOWN_GAPS): places where the schema rejects what
SageMaker documents and accepts. A tolerated error is still printed, with the gap that covers it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError

EXPRESSION_FUNCTIONS = frozenset({"Std:Join", "Std:JsonGet"})


@dataclass(frozen=True)
class Located:
    """A validation error and where it is: the step (or None for the top level) and the path in it."""

    error: ValidationError
    step_type: str | None
    path: tuple[str | int, ...]


@dataclass(frozen=True)
class KnownGap:
    key: str
    description: str
    covers: Callable[[Located], bool]


def _extra_properties(error: ValidationError) -> set[str]:
    """The property names an `additionalProperties: false` error is about."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return set()
    allowed = set(error.schema.get("properties", {}))
    patterns = [re.compile(pattern) for pattern in error.schema.get("patternProperties", {})]
    return {name for name in error.instance if name not in allowed and not any(p.search(name) for p in patterns)}


def _only_extra(
    names: set[str], path: tuple[str | int, ...] = (), step_type: str | None = None
) -> Callable[[Located], bool]:
    def covers(located: Located) -> bool:
        extras = _extra_properties(located.error)
        return bool(extras) and extras <= names and located.path == path and located.step_type == step_type

    return covers


def _expression_value(located: Located) -> bool:
    instance = located.error.instance
    return (
        located.error.validator in ("oneOf", "anyOf", "type")
        and isinstance(instance, dict)
        and len(instance) == 1
        and next(iter(instance)) in EXPRESSION_FUNCTIONS
    )


def _model_data_url_reference(located: Located) -> bool:
    """A CreateModel container's ModelDataUrl given as {'Get': ...}: the schema types it a plain string."""
    instance = located.error.instance
    return (
        located.step_type == "Model"
        and located.error.validator == "type"
        and len(located.path) >= 2
        and located.path[-1] == "ModelDataUrl"
        and located.path[0] == "Arguments"
        and isinstance(instance, dict)
        and set(instance) == {"Get"}
        and isinstance(instance["Get"], str)
    )


# The schema's own gaps (checked against schema/pipeline-definition.schema.json at commit 02a0602; see the README).
KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        "expressions-in-fields",
        "argument values may only be plain values or {'Get': ...}; SageMaker also evaluates Std:Join and "
        "Std:JsonGet there (and the schema's own JoinFunction entry is malformed: 'Values' sits under "
        "'Std:Join' as if it were a keyword, so no Std:Join object can match it)",
        _expression_value,
    ),
    KnownGap(
        "processing-property-files",
        "ProcessingStep has no PropertyFiles, the documented way for a processing step to publish a JSON file "
        "that later steps read with Std:JsonGet",
        _only_extra({"PropertyFiles"}, (), "Processing"),
    ),
    KnownGap(
        "register-model-arguments",
        "RegisterModel arguments lack ModelApprovalStatus and CustomerMetadataProperties (CreateModelPackage fields)",
        _only_extra({"ModelApprovalStatus", "CustomerMetadataProperties"}, ("Arguments",), "RegisterModel"),
    ),
    KnownGap(
        "model-data-url-reference",
        "ContainerDefinition.ModelDataUrl is a plain string (s3/https pattern) where every other argument takes "
        "StringArgumentValue, so CreateModel cannot take the trained model as "
        "{'Get': 'Steps.<training step>.ModelArtifacts.S3ModelArtifacts'}, the documented step-property reference",
        _model_data_url_reference,
    ),
    KnownGap(
        "top-level-configs",
        "the top level rejects PipelineExperimentConfig and MlflowConfig, which the SageMaker SDK writes",
        _only_extra({"PipelineExperimentConfig", "MlflowConfig"}, (), None),
    ),
)


@dataclass(frozen=True)
class Finding:
    where: str
    message: str
    gap: str | None  # the KnownGap key that tolerates it, or None for a real finding


@dataclass(frozen=True)
class SchemaCheck:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.gap is None)

    @property
    def tolerated(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.gap is not None)


def step_definitions(schema: dict[str, Any]) -> dict[str, str]:
    """Step type -> the name of the schema definition for it (from each definition's Type enum)."""
    types: dict[str, str] = {}
    for name, definition in schema.get("definitions", {}).items():
        type_property = definition.get("properties", {}).get("Type", {}) if isinstance(definition, dict) else {}
        if name.endswith("Step") and isinstance(type_property.get("enum"), list):
            for step_type in type_property["enum"]:
                types.setdefault(str(step_type), name)
    return types


def _where(prefix: str, path: Sequence[str | int]) -> str:
    return prefix + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def check_definition(definition: dict[str, Any], schema: dict[str, Any]) -> SchemaCheck:
    Draft7Validator.check_schema(schema)
    findings: list[Finding] = []

    def record(error: ValidationError, step_type: str | None, prefix: str) -> None:
        path = tuple(error.absolute_path)
        located = Located(error, step_type, path)
        gap = next((gap.key for gap in KNOWN_GAPS if gap.covers(located)), None)
        findings.append(Finding(_where(prefix, path), error.message, gap))

    top_level = {key: value for key, value in definition.items() if key != "Steps"}
    top_level["Steps"] = []
    for error in Draft7Validator(schema).iter_errors(top_level):
        record(error, None, "definition")
    definitions = step_definitions(schema)
    for index, step in enumerate(definition.get("Steps", [])):
        step_type = str(step.get("Type"))
        prefix = f"Steps[{index}] ({step.get('Name')}, {step_type})"
        if step_type not in definitions:
            findings.append(Finding(prefix, f"the schema defines no step of type {step_type!r}", None))
            continue
        step_schema = {"definitions": schema["definitions"], "$ref": f"#/definitions/{definitions[step_type]}"}
        for error in Draft7Validator(step_schema).iter_errors(step):
            record(error, step_type, prefix)
    return SchemaCheck(tuple(findings))


def generated_definition(env_name: str) -> dict[str, Any]:
    """The definition the pipeline stack registers for `env_name` (cdk.json), with its Fn::Sub placeholders."""
    from app_config import load_environment
    from ml_pipeline.definition import PipelineSettings, pipeline_definition

    context = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text(encoding="utf-8"))["context"]
    config = load_environment(context.get("environments") or {}, env_name, default_account=None, default_region=None)
    settings = PipelineSettings.with_placeholders(f"taxi-anomaly-{env_name}", config.region, config.pipeline)
    parsed: dict[str, Any] = json.loads(pipeline_definition(settings))
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline.schema_check", description=__doc__.split("\n")[0])
    parser.add_argument("--schema", type=Path, required=True, help="pipeline-definition.schema.json")
    parser.add_argument("--env", default="dev", help="environment in cdk.json whose definition to check")
    parser.add_argument("--definition", type=Path, help="check this definition file instead of generating one")
    arguments = parser.parse_args(argv)
    try:
        schema = json.loads(arguments.schema.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"cannot read the schema {arguments.schema}: {error}", file=sys.stderr)
        return 2
    if arguments.definition:
        definition = json.loads(arguments.definition.read_text(encoding="utf-8"))
    else:
        definition = generated_definition(arguments.env)
    result = check_definition(definition, schema)
    for finding in result.tolerated:
        print(f"tolerated ({finding.gap}): {finding.where}: {finding.message[:200]}")
    for finding in result.errors:
        print(f"ERROR: {finding.where}: {finding.message[:500]}")
    steps = len(definition.get("Steps", []))
    print(
        f"{steps} steps checked against {arguments.schema}: {len(result.errors)} finding(s), "
        f"{len(result.tolerated)} tolerated by known schema gaps ({', '.join(gap.key for gap in KNOWN_GAPS)})"
    )
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
