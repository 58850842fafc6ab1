"""The local Random Cut Forest and batch transform refuse what SageMaker would refuse, and join as documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local_mode.local_s3 import LocalS3
from local_mode.pipeline_runner import DefinitionError, ExecutionContext, StepFailedError
from local_mode.pipeline_steps import ModelStepExecutor, TrainingStepExecutor, TransformStepExecutor
from local_mode.progress import Progress
from local_mode.rcf_model import ModelError, RcfHyperparameters, UnsupportedJsonPathError, select_json

RCF_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1"
TRAIN_URI = "s3://prepared/taxi/run/train/"
SCORING_URI = "s3://prepared/taxi/run/scoring/"
OUTPUT_FILTER = "$['window_start','passengers','expected','SageMakerOutput']"


def context() -> ExecutionContext:
    return ExecutionContext(
        pipeline_name="p",
        execution_id="abc123def456",
        execution_arn="arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/abc123def456",
        start_time=datetime.now(UTC),
        parameters={},
        step_types={},
    )


def put(s3: LocalS3, uri: str, text: str) -> Path:
    path = s3.path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def training_arguments(hyperparameters: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": RCF_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters or {"feature_dim": "2", "num_trees": "50", "num_samples_per_tree": "16"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": TRAIN_URI}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://artifacts/model"},
    }


def transform_arguments(model_name: str, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": SCORING_URI}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": "s3://artifacts/scores",
            "Accept": "application/jsonlines",
            "AssembleWith": "Line",
        },
        "DataProcessing": {"InputFilter": "$.rcf_input", "JoinSource": "Input", "OutputFilter": OUTPUT_FILTER},
    }
    for section, values in changes.items():
        arguments[section] = {**arguments[section], **values}
    return arguments


@pytest.fixture
def s3(tmp_path: Path) -> LocalS3:
    s3 = LocalS3(tmp_path / "s3")
    put(s3, TRAIN_URI + "part-00000.csv", "".join(f"{index % 7},{index % 5}\n" for index in range(200)))
    return s3


@pytest.fixture
def model(s3: LocalS3) -> tuple[str, dict[str, str]]:
    train = TrainingStepExecutor(s3, Progress(quiet=True), "us-east-1", "0")
    trained = train("Train", training_arguments(), {}, context())
    models: dict[str, str] = {}
    created = ModelStepExecutor("us-east-1", "0", models)(
        "Model",
        {"PrimaryContainer": {"Image": RCF_IMAGE, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]}},
        {},
        context(),
    )
    return str(created["ModelName"]), models


def scoring_line(window_start: str, features: list[float]) -> str:
    record = {"window_start": window_start, "passengers": 12, "expected": 10.5, "rcf_input": {"features": features}}
    return json.dumps(record) + "\n"


def run_transform(s3: LocalS3, model: tuple[str, dict[str, str]], **changes: Any) -> list[str]:
    name, models = model
    executor = TransformStepExecutor(s3, models, Progress(quiet=True), "us-east-1", "0")
    executor("Score", transform_arguments(name, **changes), {}, context())
    return [line for path in executor.output_files for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_records_are_scored_and_joined_to_their_window(s3: LocalS3, model: Any) -> None:
    # Given two scoring records in the prep job's JSON Lines form
    text = scoring_line("2025-03-01 00:00:00", [1, 2]) + scoring_line("2025-03-01 00:30:00", [50, -40])
    put(s3, SCORING_URI + "part-00000.json", text)

    # When the transform runs as the definition asks
    lines = run_transform(s3, model)

    # Then each output line is the window plus RCF's documented answer under SageMakerOutput
    records = [json.loads(line) for line in lines]
    assert [set(record) for record in records] == [{"window_start", "passengers", "expected", "SageMakerOutput"}] * 2
    assert [record["window_start"] for record in records] == ["2025-03-01 00:00:00", "2025-03-01 00:30:00"]
    assert all(set(record["SageMakerOutput"]) == {"score"} for record in records)
    assert records[1]["SageMakerOutput"]["score"] > records[0]["SageMakerOutput"]["score"]


def test_an_accept_type_rcf_does_not_document_is_refused(s3: LocalS3, model: Any) -> None:
    put(s3, SCORING_URI + "part-00000.json", scoring_line("2025-03-01 00:00:00", [1, 2]))
    with pytest.raises(StepFailedError, match=r"does not answer Accept 'text/csv'.*application/jsonlines"):
        run_transform(s3, model, TransformOutput={"Accept": "text/csv"})


def test_joining_needs_the_same_input_and_output_format(s3: LocalS3, model: Any) -> None:
    put(s3, SCORING_URI + "part-00000.csv", "2025-03-01 00:00:00,12,1,2\n")
    with pytest.raises(StepFailedError, match="JoinSource Input needs the same input and output format"):
        run_transform(s3, model, TransformInput={"ContentType": "text/csv"})


def test_a_documented_format_local_mode_does_not_emulate_is_named(s3: LocalS3, model: Any) -> None:
    put(s3, SCORING_URI + "part-00000.json", scoring_line("2025-03-01 00:00:00", [1, 2]))
    with pytest.raises(DefinitionError, match="local mode emulates"):
        run_transform(
            s3,
            model,
            TransformInput={"ContentType": "application/json"},
            TransformOutput={"Accept": "application/json"},
        )


def test_csv_rows_without_a_join_get_one_json_lines_answer_each(s3: LocalS3, model: Any) -> None:
    put(s3, SCORING_URI + "part-00000.csv", "2025-03-01 00:00:00,1,2\n2025-03-01 00:30:00,3,4\n")
    lines = run_transform(
        s3,
        model,
        TransformInput={"ContentType": "text/csv"},
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "None", "OutputFilter": "$"},
    )
    assert [set(json.loads(line)) for line in lines] == [{"score"}, {"score"}]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"window_start": "x", "rcf_input": [1, 2]}, "not a Random Cut Forest JSON Lines request"),
        ({"window_start": "x", "rcf_input": {"features": [1, 2, 3]}}, "has 3 features; the model expects 2"),
        ({"window_start": "x", "rcf_input": {"features": [1, "a"]}}, "non-numeric features"),
        ({"window_start": "x", "rcf_input": {"features": [1, 2]}, "SageMakerOutput": 1}, "reserved attribute"),
    ],
)
def test_records_rcf_would_not_accept_fail_the_transform(
    s3: LocalS3, model: Any, record: dict[str, Any], message: str
) -> None:
    put(s3, SCORING_URI + "part-00000.json", json.dumps(record) + "\n")
    with pytest.raises(StepFailedError, match=message):
        run_transform(s3, model, DataProcessing={"OutputFilter": "$"})


def test_a_marker_under_the_scoring_prefix_is_refused_as_sagemaker_would_read_it(s3: LocalS3, model: Any) -> None:
    put(s3, SCORING_URI + "part-00000.json", scoring_line("2025-03-01 00:00:00", [1, 2]))
    put(s3, SCORING_URI + "_SUCCESS", "")
    with pytest.raises(StepFailedError, match=r"holds _SUCCESS, which SageMaker reads as data"):
        run_transform(s3, model)


@pytest.mark.parametrize("marker", ["_SUCCESS", ".part-00000.csv.crc", "_temporary/0/part-00001.csv"])
def test_a_marker_under_the_train_prefix_fails_the_training_job(s3: LocalS3, marker: str) -> None:
    put(s3, TRAIN_URI + marker, "")
    with pytest.raises(StepFailedError, match=f"holds {marker}"):
        TrainingStepExecutor(s3, Progress(quiet=True), "us-east-1", "0")("Train", training_arguments(), {}, context())


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"feature_dim": "2", "num_trees": "49"}, "num_trees must be from 50 to 1000"),
        ({"feature_dim": "2", "num_samples_per_tree": "2049"}, "num_samples_per_tree must be from 1 to 2048"),
        ({"feature_dim": "0"}, "feature_dim must be from 1 to 10000"),
        ({"feature_dim": "two"}, "feature_dim must be an integer"),
        ({"num_trees": "50"}, "feature_dim is required"),
    ],
)
def test_hyperparameters_outside_rcfs_valid_values_fail_the_training_job(
    hyperparameters: dict[str, str], message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        RcfHyperparameters.from_definition(hyperparameters)


def test_json_filters_follow_the_documented_operators() -> None:
    record = {"id": 1, "features": [1, 2], "nested": {"features": [3]}, "SageMakerOutput": {"score": 0.5}}
    assert select_json(record, "$") == record
    assert select_json(record, "$.nested") == {"features": [3]}
    assert select_json(record, "$['id','SageMakerOutput']") == {"id": 1, "SageMakerOutput": {"score": 0.5}}
    with pytest.raises(ModelError, match="has no 'missing'"):
        select_json(record, "$.missing")
    with pytest.raises(UnsupportedJsonPathError, match=r"\$\.\.features"):
        select_json(record, "$..features")
