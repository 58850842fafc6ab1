"""The definition interpreter refuses what it cannot execute, naming it; filters follow JSONPath."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from local_mode.pipeline_runner import DefinitionError, ExecutionContext, PipelineRunner, evaluate, execution_order
from local_mode.progress import Progress
from local_mode.rcf_model import UnsupportedJsonPathError, select_columns

pytestmark = pytest.mark.e2e


def _context(**step_properties: dict[str, Any]) -> ExecutionContext:
    return ExecutionContext(
        pipeline_name="p",
        execution_id="abc123def456",
        execution_arn="arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/abc123def456",
        start_time=datetime.now(UTC),
        parameters={"OutputLocation": "s3://bucket/prefix/", "NumTrees": 50},
        step_types={"Prep": "Callback", "Train": "Training"},
        step_properties=dict(step_properties),
    )


def _noop(name: str, arguments: dict[str, Any], step: dict[str, Any], context: ExecutionContext) -> dict[str, Any]:
    return {}


def test_unsupported_step_type_fails_naming_the_step_and_type() -> None:
    definition = {"Steps": [{"Name": "Prep", "Type": "Callback"}, {"Name": "CheckQuality", "Type": "Condition"}]}
    runner = PipelineRunner(
        definition, {"Callback": _noop}, Progress(quiet=True), pipeline_name="p", region="us-east-1", account_id="0"
    )
    with pytest.raises(DefinitionError, match=r"step 'CheckQuality' has type 'Condition', which local mode cannot"):
        runner.run()


def test_unsupported_property_reference_fails_naming_it() -> None:
    context = _context(Train={"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}})
    assert evaluate({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, context) == "s3://b/model.tar.gz"
    with pytest.raises(DefinitionError, match=r"Steps\.Train\.FinalMetricDataList.*has no 'FinalMetricDataList'"):
        evaluate({"Get": "Steps.Train.FinalMetricDataList[0].Value"}, context)
    # Std:JsonGet is interpreted (Evaluate's property file), in SageMaker's shape only: PropertyFile and Path.
    with pytest.raises(DefinitionError, match=r"Std:JsonGet needs PropertyFile and Path, got .*JsonPath"):
        evaluate({"Std:JsonGet": {"PropertyFile": "x", "JsonPath": "y"}}, context)


def test_expressions_evaluate_like_sagemaker() -> None:
    context = _context(Prep={"OutputParameters": {"s3_data_out": "s3://bucket/prefix/abc/train/"}})
    joined = {
        "Std:Join": {
            "On": "",
            "Values": [{"Get": "Parameters.OutputLocation"}, {"Get": "Execution.PipelineExecutionId"}, "/"],
        }
    }
    assert evaluate(joined, context) == "s3://bucket/prefix/abc123def456/"
    assert evaluate({"Std:Join": {"On": "", "Values": [{"Get": "Parameters.NumTrees"}]}}, context) == "50"
    assert evaluate({"Get": "Steps.Prep.OutputParameters['s3_data_out']"}, context) == "s3://bucket/prefix/abc/train/"


def test_steps_run_in_dependency_order() -> None:
    steps = [
        {"Name": "Score", "Type": "Transform", "Arguments": {"ModelName": {"Get": "Steps.Model.ModelName"}}},
        {"Name": "Model", "Type": "Model", "DependsOn": ["Train"]},
        {"Name": "Train", "Type": "Training"},
    ]
    assert [step["Name"] for step in execution_order(steps)] == ["Train", "Model", "Score"]


@pytest.mark.parametrize(
    ("json_path", "expected"),
    [("$[2:]", ["c", "d", "e"]), ("$[0,1,-1]", ["a", "b", "e"]), ("$[0,3:]", ["a", "d", "e"]), ("$", list("abcde"))],
)
def test_csv_filters_follow_jsonpath(json_path: str, expected: list[str]) -> None:
    assert select_columns(list("abcde"), json_path) == expected


def test_unsupported_jsonpath_is_named() -> None:
    with pytest.raises(UnsupportedJsonPathError, match=r"\$\.features"):
        select_columns(["1"], "$.features")
