"""The schema checker itself, on a tiny schema of our own shaped like AWS's (the real one is not committed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ml_pipeline.schema_check import check_definition, main

STRING_VALUE = {"oneOf": [{"type": "string"}, {"$ref": "#/definitions/GetFunction"}]}
TINY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/schema#",
    "type": "object",
    "definitions": {
        "GetFunction": {
            "type": "object",
            "properties": {"Get": {"type": "string"}},
            "required": ["Get"],
            "additionalProperties": False,
        },
        "StringArgumentValue": STRING_VALUE,
        "ProcessingStep": {
            "type": "object",
            "properties": {
                "Name": {"type": "string"},
                "Type": {"enum": ["Processing"]},
                "Arguments": {
                    "type": "object",
                    "properties": {"RoleArn": {"$ref": "#/definitions/StringArgumentValue"}},
                    "additionalProperties": False,
                },
            },
            "required": ["Name", "Type"],
            "additionalProperties": False,
        },
        "RegisterModelStep": {
            "type": "object",
            "properties": {
                "Name": {"type": "string"},
                "Type": {"enum": ["RegisterModel"]},
                "Arguments": {
                    "type": "object",
                    "properties": {"ModelPackageGroupName": {"$ref": "#/definitions/StringArgumentValue"}},
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
        "CreateModelStep": {
            "type": "object",
            "properties": {
                "Name": {"type": "string"},
                "Type": {"enum": ["Model"]},
                "Arguments": {
                    "type": "object",
                    "properties": {
                        "PrimaryContainer": {
                            "type": "object",
                            "properties": {"ModelDataUrl": {"type": "string"}, "Image": STRING_VALUE},
                        }
                    },
                },
            },
        },
    },
    "properties": {"Version": {"enum": ["2020-12-01"]}, "Steps": {"type": "array"}},
    "required": ["Steps"],
    "additionalProperties": False,
}


def definition(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"Version": "2020-12-01", **top, "Steps": list(steps)}


def processing(**arguments: Any) -> dict[str, Any]:
    return {"Name": "Evaluate", "Type": "Processing", "Arguments": {"RoleArn": "arn:aws:iam::1:role/r", **arguments}}


def test_a_conforming_definition_has_no_finding() -> None:
    result = check_definition(definition(processing(RoleArn={"Get": "Parameters.Role"})), TINY_SCHEMA)
    assert result.findings == ()


def test_the_known_gaps_are_tolerated_and_named() -> None:
    # Given a definition using what SageMaker accepts but the schema does not
    step = {**processing(RoleArn={"Std:Join": {"On": "", "Values": ["a", "b"]}}), "PropertyFiles": []}
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {"ModelPackageGroupName": {"Std:JsonGet": {}}, "ModelApprovalStatus": "Approved"},
    }
    model = {
        "Name": "CreateModel",
        "Type": "Model",
        "Arguments": {"PrimaryContainer": {"ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}}},
    }
    # When checked
    result = check_definition(definition(step, register, model, PipelineExperimentConfig={}), TINY_SCHEMA)
    # Then every error is tolerated by the gap that covers it, and none is a finding
    assert result.errors == ()
    assert sorted(finding.gap or "" for finding in result.tolerated) == [
        "expressions-in-fields",
        "expressions-in-fields",
        "model-data-url-reference",
        "processing-property-files",
        "register-model-arguments",
        "top-level-configs",
    ]


@pytest.mark.parametrize(
    ("changed", "where"),
    [
        (definition(processing(RoleArn=7)), "Steps[0] (Evaluate, Processing).Arguments.RoleArn"),
        (definition(processing(Unknown="x")), "Steps[0] (Evaluate, Processing).Arguments"),
        # A gap covers only its own properties: a misspelt one next to PropertyFiles is still a finding.
        (definition({**processing(), "PropertyFiles": [], "Retry": 1}), "Steps[0] (Evaluate, Processing)"),
        (definition(processing(), Mystery=1), "definition"),
        (definition({"Name": "Wait", "Type": "Callback"}), "Steps[0] (Wait, Callback)"),
        # The ModelDataUrl gap is for a step-property reference only, not for any wrong value there.
        (
            definition({"Name": "M", "Type": "Model", "Arguments": {"PrimaryContainer": {"ModelDataUrl": 7}}}),
            "Steps[0] (M, Model).Arguments.PrimaryContainer.ModelDataUrl",
        ),
    ],
)
def test_anything_else_is_a_finding_naming_where(changed: dict[str, Any], where: str) -> None:
    (error,) = check_definition(changed, TINY_SCHEMA).errors
    assert error.where == where


def test_the_command_fails_on_findings_and_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TINY_SCHEMA))
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(definition(processing())))
    bad.write_text(json.dumps(definition(processing(RoleArn=7))))
    assert main(["--schema", str(schema), "--definition", str(good)]) == 0
    assert main(["--schema", str(schema), "--definition", str(bad)]) == 1
    output = capsys.readouterr().out
    assert "ERROR: Steps[0] (Evaluate, Processing).Arguments.RoleArn" in output
    assert main(["--schema", str(tmp_path / "missing.json"), "--definition", str(good)]) == 2
