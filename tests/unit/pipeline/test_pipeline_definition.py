"""The generated pipeline definition: callback prep -> RCF training -> model -> batch scoring."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from pipeline_support import (
    PIPELINE_NAME,
    REPO_ROOT,
    ConnectionAttempts,
    generated_definition,
    get,
    parsed_definition,
    placeholder_settings,
    referenced_steps,
    step,
)

from app_config import PipelineConfig
from glue_scripts.features.window_features import FEATURE_DIM
from ml_pipeline.definition import (
    DEFINITION_PLACEHOLDERS,
    PipelineSettings,
    build_pipeline,
    pipeline_definition,
    placeholder,
)
from ml_pipeline.rcf_hyperparameters import HyperparameterError

US_EAST_1_RCF_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/randomcutforest:1"
EXECUTION_ID = get("Execution.PipelineExecutionId")
EXECUTION_ARTIFACTS = {
    "Std:Join": {"On": "/", "Values": ["s3://${ArtifactsBucket}", "pipeline-executions", EXECUTION_ID]}
}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return parsed_definition(placeholder_settings())


def test_steps_run_prepare_train_package_score_in_that_order(definition: dict[str, Any]) -> None:
    # Given the definition the CDK stack deploys
    # When reading its steps
    steps = [(candidate["Name"], candidate["Type"]) for candidate in definition["Steps"]]

    # Then they are the callback prep, RCF training, model packaging and batch scoring
    assert steps == [
        ("PrepareData", "Callback"),
        ("TrainModel", "Training"),
        ("CreateModel", "Model"),
        ("ScoreData", "Transform"),
        ("Evaluate", "Processing"),
        ("ApproveResults", "Callback"),
        ("Register", "RegisterModel"),
    ]


def test_each_step_depends_on_the_steps_whose_outputs_it_reads(definition: dict[str, Any]) -> None:
    # Given the definition (SageMaker derives the execution order from property references)
    # When collecting the steps each step reads from
    dependencies = {candidate["Name"]: referenced_steps(candidate["Arguments"]) for candidate in definition["Steps"]}

    # Then training waits for prep, the model for training, and scoring for the model and prep
    assert dependencies == {
        "PrepareData": set(),
        "TrainModel": {"PrepareData"},
        "CreateModel": {"TrainModel"},
        "ScoreData": {"CreateModel", "PrepareData"},
        "Evaluate": {"ScoreData"},
        "ApproveResults": {"Evaluate"},
        "Register": {"TrainModel", "Evaluate", "ApproveResults"},
    }


def test_parameters_are_the_locations_instances_and_rcf_settings_but_not_feature_dim(
    definition: dict[str, Any],
) -> None:
    # Given the definition built from the default pipeline config
    # When reading its parameters
    parameters = {
        parameter["Name"]: (parameter["Type"], parameter["DefaultValue"]) for parameter in definition["Parameters"]
    }

    # Then each has the config's default; feature_dim is fixed by the prep job's features, so not a parameter
    assert parameters == {
        "InputLocation": ("String", "s3://${RawBucket}/taxi/"),
        "OutputLocation": ("String", "s3://${PreparedBucket}/taxi/"),
        "TrainingInstanceType": ("String", "ml.m5.large"),
        "TrainingInstanceCount": ("Integer", 1),
        "TransformInstanceType": ("String", "ml.m5.large"),
        "NumSamplesPerTree": ("Integer", 64),
        "NumTrees": ("Integer", 200),
    }


def test_callback_sends_the_input_and_a_per_execution_output_location_to_the_queue(
    definition: dict[str, Any],
) -> None:
    # Given the callback step
    callback = step(definition, "PrepareData")

    # Then SageMaker posts to our queue, with the input parameter and OutputLocation/<execution id>/
    assert callback["SqsQueueUrl"] == "${CallbackQueueUrl}"
    assert callback["Arguments"] == {
        "input_location": get("Parameters.InputLocation"),
        "output_location": {"Std:Join": {"On": "", "Values": [get("Parameters.OutputLocation"), EXECUTION_ID, "/"]}},
    }
    # And our handler reports the training and scoring prefixes back as output parameters
    assert callback["OutputParameters"] == [
        {"OutputName": "s3_data_out", "OutputType": "String"},
        {"OutputName": "s3_scoring_data", "OutputType": "String"},
    ]


def test_training_runs_the_regions_rcf_image_on_the_prepared_training_data(definition: dict[str, Any]) -> None:
    # Given the training step
    training = step(definition, "TrainModel")["Arguments"]

    # Then it uses the built-in RCF image with the instances from parameters
    assert training["AlgorithmSpecification"] == {"TrainingInputMode": "File", "TrainingImage": US_EAST_1_RCF_IMAGE}
    assert training["ResourceConfig"]["InstanceType"] == get("Parameters.TrainingInstanceType")
    assert training["ResourceConfig"]["InstanceCount"] == get("Parameters.TrainingInstanceCount")
    assert training["RoleArn"] == "${PipelineRoleArn}"
    assert training["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    # And reads the callback's training prefix as unlabeled CSV, sharded across instances
    assert training["InputDataConfig"] == [
        {
            "ChannelName": "train",
            "ContentType": "text/csv;label_size=0",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": get("Steps.PrepareData.OutputParameters['s3_data_out']"),
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        }
    ]
    # And writes the model under this execution's artifacts
    assert training["OutputDataConfig"] == {
        "S3OutputPath": {"Std:Join": {"On": "/", "Values": [EXECUTION_ARTIFACTS, "model"]}}
    }


def test_training_hyperparameters_are_strings_with_the_tree_settings_from_parameters(
    definition: dict[str, Any],
) -> None:
    # Given the training step
    hyperparameters = step(definition, "TrainModel")["Arguments"]["HyperParameters"]

    # Then feature_dim is the number of features the prep job writes and the tree settings are parameters
    # rendered as strings
    assert hyperparameters == {
        "feature_dim": str(FEATURE_DIM),
        "num_samples_per_tree": {"Std:Join": {"On": "", "Values": [get("Parameters.NumSamplesPerTree")]}},
        "num_trees": {"Std:Join": {"On": "", "Values": [get("Parameters.NumTrees")]}},
    }


def test_model_packages_the_trained_artifacts_with_the_rcf_image(definition: dict[str, Any]) -> None:
    # Given the model step
    model = step(definition, "CreateModel")["Arguments"]

    # Then it serves the training step's artifacts with the same RCF image
    assert model == {
        "ExecutionRoleArn": "${PipelineRoleArn}",
        "PrimaryContainer": {
            "Image": US_EAST_1_RCF_IMAGE,
            "ModelDataUrl": get("Steps.TrainModel.ModelArtifacts.S3ModelArtifacts"),
        },
    }


def test_scoring_uses_rcf_json_lines_and_joins_each_score_to_its_window(
    definition: dict[str, Any],
) -> None:
    # Given the transform step
    transform = step(definition, "ScoreData")["Arguments"]

    # Then it scores the callback's scoring prefix record by record with the model from the model step
    assert transform["ModelName"] == get("Steps.CreateModel.ModelName")
    assert transform["BatchStrategy"] == "MultiRecord"
    assert transform["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": get("Steps.PrepareData.OutputParameters['s3_scoring_data']"),
            }
        },
        "ContentType": "application/jsonlines",
        "SplitType": "Line",
    }
    # And each JSON Lines window hands RCF only its {"features": [...]} record; the answer is joined back to the
    # window, which keeps window_start, passengers and expected next to SageMakerOutput
    assert transform["DataProcessing"] == {
        "InputFilter": "$.rcf_input",
        "JoinSource": "Input",
        "OutputFilter": "$['window_start','passengers','expected','SageMakerOutput']",
    }
    # And RCF answers in a format it documents (not text/csv), one line per record
    assert transform["TransformOutput"] == {
        "S3OutputPath": {"Std:Join": {"On": "/", "Values": [EXECUTION_ARTIFACTS, "scores"]}},
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    assert transform["TransformResources"] == {
        "InstanceType": get("Parameters.TransformInstanceType"),
        "InstanceCount": 1,
    }


def test_the_scoring_record_fields_agree_between_prep_job_definition_and_evaluation() -> None:
    # The prep job writes them, the transform filters on them, pipeline_evaluation reads them back
    from glue_scripts import taxi_prep
    from ml_pipeline import definition as pipeline
    from pipeline_evaluation import transform_output

    written = (
        taxi_prep.SCORING_WINDOW_START,
        taxi_prep.SCORING_OBSERVED,
        taxi_prep.SCORING_EXPECTED,
        taxi_prep.SCORING_RCF_INPUT,
    )
    filtered = (
        pipeline.SCORING_WINDOW_START,
        pipeline.SCORING_OBSERVED,
        pipeline.SCORING_EXPECTED,
        pipeline.SCORING_RCF_INPUT,
    )
    read = (
        transform_output.WINDOW_START_FIELD,
        transform_output.OBSERVED_FIELD,
        transform_output.EXPECTED_FIELD,
        taxi_prep.SCORING_RCF_INPUT,
    )
    assert written == filtered == read
    assert pipeline.TRANSFORM_OUTPUT_FIELD == transform_output.TRANSFORM_OUTPUT_FIELD == "SageMakerOutput"
    assert taxi_prep.RCF_FEATURES == "features"


def test_the_only_substitution_variables_are_the_documented_placeholders() -> None:
    # Given the definition text the stack passes through Fn::Sub
    text = generated_definition(placeholder_settings())

    # When collecting every ${...} sequence
    variables = re.findall(r"\$\{([^}]*)\}", text)

    # Then each placeholder is used and nothing else would be substituted (or break Fn::Sub)
    assert set(variables) == set(DEFINITION_PLACEHOLDERS)
    assert text.count("${") == len(variables)


def test_the_sdk_stand_in_role_never_reaches_the_definition() -> None:
    # Given the definition (the SDK's ModelTrainer is constructed with a stand-in role ARN)
    text = generated_definition(placeholder_settings())

    # Then only the real role appears
    assert "stand-in" not in text
    assert "000000000000" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_trees": 49}, "num_trees must be from 50 to 1000"),
        ({"num_trees": 1001}, "num_trees must be from 50 to 1000"),
        ({"num_samples_per_tree": 0}, "num_samples_per_tree must be from 1 to 2048"),
        ({"num_samples_per_tree": 2049}, "num_samples_per_tree must be from 1 to 2048"),
    ],
)
def test_hyperparameters_outside_rcfs_documented_ranges_fail_where_the_definition_is_built(
    changes: dict[str, int], message: str
) -> None:
    # Given settings that skip the config file's own validation (a PipelineConfig built in code)
    settings = placeholder_settings(**changes)

    # When / Then building the definition fails naming the hyperparameter and its range, before any SDK work
    with pytest.raises(HyperparameterError, match=message):
        build_pipeline(settings)


def test_config_defaults_become_parameter_defaults() -> None:
    # Given a config with non-default instances and tree settings
    settings = placeholder_settings(
        training_instance_type="ml.c5.xlarge",
        training_instance_count=2,
        transform_instance_type="ml.c5.2xlarge",
        num_samples_per_tree=512,
        num_trees=100,
    )

    # When generating the definition
    parameters = {
        parameter["Name"]: parameter["DefaultValue"] for parameter in parsed_definition(settings)["Parameters"]
    }

    # Then the parameters default to them
    assert parameters["TrainingInstanceType"] == "ml.c5.xlarge"
    assert parameters["TrainingInstanceCount"] == 2
    assert parameters["TransformInstanceType"] == "ml.c5.2xlarge"
    assert parameters["NumSamplesPerTree"] == 512
    assert parameters["NumTrees"] == 100


def test_local_values_pass_through_untouched_for_the_local_mode() -> None:
    # Given concrete values instead of placeholders, in another region
    settings = PipelineSettings(
        pipeline_name="taxi-anomaly-local",
        region="eu-west-1",
        role_arn="arn:aws:iam::123456789012:role/local-pipeline",
        callback_queue_url="file:///tmp/local-mode/callback-queue",
        raw_bucket="local-raw",
        prepared_bucket="local-prepared",
        artifacts_bucket="local-artifacts",
        pipeline=PipelineConfig(),
        approval_queue_url="file:///tmp/local-mode/approval-queue",
        evaluation_code_bucket="local-artifacts",
        evaluation_code_key="code/evaluation.zip",
        evaluation_code_file="evaluation.zip",
        model_package_group_name="taxi-anomaly-local",
    )

    # When generating the definition
    definition = parsed_definition(settings)

    # Then the values appear as given, with that region's RCF image and no placeholders
    assert step(definition, "PrepareData")["SqsQueueUrl"] == "file:///tmp/local-mode/callback-queue"
    assert step(definition, "TrainModel")["Arguments"]["RoleArn"] == "arn:aws:iam::123456789012:role/local-pipeline"
    assert step(definition, "CreateModel")["Arguments"]["PrimaryContainer"]["Image"] == (
        "438346466558.dkr.ecr.eu-west-1.amazonaws.com/randomcutforest:1"
    )
    assert definition["Parameters"][0]["DefaultValue"] == "s3://local-raw/taxi/"
    assert "${" not in generated_definition(settings)


def test_a_region_without_rcf_fails_generation_clearly() -> None:
    # Given a region with no Random Cut Forest image
    settings = PipelineSettings.with_placeholders(PIPELINE_NAME, "xx-nowhere-1", PipelineConfig())

    # When generating the definition
    # Then the error names the problem
    with pytest.raises(ValueError, match="Random Cut Forest is not available in region 'xx-nowhere-1'"):
        pipeline_definition(settings)


def test_placeholders_are_fn_sub_variables_and_unknown_names_are_rejected() -> None:
    # Given the documented placeholder names
    # When rendering them
    rendered = [placeholder(name) for name in DEFINITION_PLACEHOLDERS]

    # Then they are ${Name} and a typo fails loudly
    assert rendered == [
        "${PipelineRoleArn}",
        "${CallbackQueueUrl}",
        "${RawBucket}",
        "${PreparedBucket}",
        "${ArtifactsBucket}",
        "${ApprovalQueueUrl}",
        "${EvaluationCodeBucket}",
        "${EvaluationCodeKey}",
        "${EvaluationCodeFile}",
        "${ModelPackageGroupName}",
    ]
    with pytest.raises(ValueError, match="unknown placeholder 'RawBuckets'"):
        placeholder("RawBuckets")


def test_generation_needs_no_credentials_region_or_network(no_aws_and_no_network: ConnectionAttempts) -> None:
    # Given no AWS credentials, region or profile, and a socket guard recording connection attempts
    default_session_before = boto3.DEFAULT_SESSION
    environment_before = dict(os.environ)

    # When generating the definition, and rendering a built Pipeline again later
    text = pipeline_definition(placeholder_settings())
    rendered_again = build_pipeline(placeholder_settings()).definition()
    # (the SDK sends telemetry from background threads: let any finish before looking)
    for thread in threading.enumerate():
        if thread.name.startswith("sagemaker"):
            thread.join(timeout=10)

    # Then both work without any connection attempt (the SDK would swallow the refusal, e.g. telemetry)
    assert json.loads(text)["Steps"]
    assert rendered_again == text
    assert no_aws_and_no_network.addresses == []
    # And the temporary SDK workarounds are undone
    assert dict(os.environ) == environment_before
    assert boto3.DEFAULT_SESSION is default_session_before


def test_generation_emits_no_sdk_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the SDK loaded (by an earlier generation) and its telemetry sender replaced by a recorder
    generated_definition(placeholder_settings())
    telemetry_events: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        "sagemaker.core.telemetry.telemetry_logging._send_telemetry_request",
        lambda *event: telemetry_events.append(event),
    )

    # When generating a definition
    pipeline_definition(placeholder_settings(num_trees=75))

    # Then the SDK sent nothing (ModelTrainer.train is telemetry-instrumented; we opt out around it)
    assert telemetry_events == []


def test_first_import_of_the_sdk_works_offline_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # Given a fresh interpreter (the SDK's import-time boto3 clients are the problem) with no AWS
    # configuration at all and a socket guard that records and refuses every connection
    script = (
        "import json, logging, socket\n"
        "attempts = []\n"
        "def refuse(_socket, address, *_args):\n"
        "    attempts.append(str(address))\n"
        "    raise ConnectionRefusedError(address)\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "from app_config import PipelineConfig\n"
        "from ml_pipeline.definition import PipelineSettings, pipeline_definition\n"
        "settings = PipelineSettings.with_placeholders('taxi-anomaly-dev', 'us-east-1', PipelineConfig())\n"
        "steps = [s['Name'] for s in json.loads(pipeline_definition(settings))['Steps']]\n"
        "root = [logging.getLogger().handlers, logging.getLogger().level]\n"
        "print(json.dumps({'steps': steps, 'attempts': attempts, 'root_logger': root}, default=str))\n"
    )
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "SAGEMAKER_"))}
    environment |= {
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "PYTHONPATH": str(REPO_ROOT),
    }

    # When generating the definition there
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, env=environment, check=False
    )

    # Then it succeeds without touching the network
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["steps"] == [
        "PrepareData", "TrainModel", "CreateModel", "ScoreData", "Evaluate", "ApproveResults", "Register"
    ]
    assert outcome["attempts"] == []
    # And the SDK's import-time logging.basicConfig(level=INFO) was undone: the host owns the root logger
    assert outcome["root_logger"] == [[], logging.WARNING]
    # And the SDK printed nothing (its routine notes and warnings would clutter `cdk synth`)
    assert result.stderr == ""
