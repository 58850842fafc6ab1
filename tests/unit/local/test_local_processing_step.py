"""The local Evaluate processing job runs the job's zip like the container does, wherever --out is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local_mode.approval_steps import EVALUATION_REPOSITORY, ProcessingStepExecutor
from local_mode.local_s3 import LocalS3
from local_mode.pipeline_runner import ExecutionContext
from local_mode.progress import Progress
from ml_pipeline.evaluation_bundle import write_evaluation_zip

CODE_URI = "s3://artifacts/code/evaluation-job.zip"
SCORES_URI = "s3://artifacts/run/scores"
REPORT_URI = "s3://artifacts/run/evaluation"


def _scores(s3: LocalS3) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    lines = [
        json.dumps(
            {
                "window_start": (start + timedelta(minutes=30 * index)).strftime("%Y-%m-%d %H:%M:%S"),
                "passengers": 100 + index % 7,
                "expected": 100.0,
                "SageMakerOutput": {"score": 1.0 + (index % 5) / 10},
            }
        )
        for index in range(48 * 8)
    ]
    target = s3.path(f"{SCORES_URI}/part-00000.jsonl.out")
    target.parent.mkdir(parents=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _evaluate_arguments() -> dict[str, object]:
    # The shape ml_pipeline.post_scoring_steps writes (placeholders replaced).
    return {
        "AppSpecification": {
            "ImageUri": f"683313688378.dkr.ecr.us-east-1.amazonaws.com/{EVALUATION_REPOSITORY}:1.4-2-py312-cpu-py3",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluation-job.zip"],
            "ContainerArguments": [
                "--scores",
                "/opt/ml/processing/input/scores",
                "--output",
                "/opt/ml/processing/output/evaluation",
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {"S3Uri": CODE_URI, "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix"},
            },
            {
                "InputName": "scores",
                "S3Input": {
                    "S3Uri": SCORES_URI,
                    "LocalPath": "/opt/ml/processing/input/scores",
                    "S3DataType": "S3Prefix",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {"S3Uri": REPORT_URI, "LocalPath": "/opt/ml/processing/output/evaluation"},
                }
            ]
        },
    }


def test_the_job_runs_from_a_relative_out_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given `--out out` (a relative folder, as `make local` passes it)
    monkeypatch.chdir(tmp_path)
    s3 = LocalS3(Path("out") / "s3")
    write_evaluation_zip(s3.path(CODE_URI))
    _scores(s3)
    scratch = Path("out") / "logs" / "processing"
    scratch.mkdir(parents=True)
    executor = ProcessingStepExecutor(s3, Progress(quiet=True), "us-east-1", "000000000000", scratch)
    context = ExecutionContext(
        "p", "run1", "arn:aws:sagemaker:us-east-1:0:pipeline/p/execution/run1", datetime.now(UTC), {}, {}
    )
    step = {
        "PropertyFiles": [
            {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
        ]
    }
    # When the Evaluate step runs
    result = executor("Evaluate", _evaluate_arguments(), step, context)
    # Then the job found its zip and wrote the report, published as the property file
    assert result["ProcessingJobStatus"] == "Completed"
    assert result["PropertyFiles"]["EvaluationReport"]["rows_scored"] == 48 * 8
    assert s3.path(f"{REPORT_URI}/evaluation.json").is_file()
