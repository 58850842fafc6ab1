"""`python -m ml_pipeline`: start (and follow) executions, list and describe them."""

from __future__ import annotations

import pytest
from pipeline_support import (
    EXECUTION_ARN,
    FIXED_NOW,
    PIPELINE_NAME,
    CapturedOutput,
    RecordingSleep,
    StubbedClient,
    expect_deployed_parameters,
    expect_poll,
    expect_stack_outputs,
    step_state,
)

from app_config import load_environment
from ml_pipeline.cli import (
    EXIT_ERROR,
    EXIT_EXECUTION_UNSUCCESSFUL,
    EXIT_OK,
    CliError,
    describe_command,
    list_command,
    main,
    pipeline_stack_name,
    resolve_pipeline_name,
    start_command,
)

TIMESTAMP = "2024-05-01 12:00:00Z"


def start(
    cloudformation: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    captured: CapturedOutput,
    *,
    parameters: dict[str, str] | None = None,
    wait: bool = True,
) -> int:
    return start_command(
        env_name="dev",
        parameters=parameters or {},
        wait=wait,
        poll_seconds=15,
        cloudformation=cloudformation.client,
        sagemaker=sagemaker.client,
        sleep=sleep,
        output=captured.output,
    )


def expect_start(sagemaker: StubbedClient, parameters: list[dict[str, str]]) -> None:
    sagemaker.stub.add_response(
        "start_pipeline_execution",
        {"PipelineExecutionArn": EXECUTION_ARN},
        {"PipelineName": PIPELINE_NAME, "PipelineParameters": parameters},
    )


def test_stack_name_matches_the_app_config_naming() -> None:
    # Given the environment config the CDK app names its stacks with
    environment = load_environment({"dev": {"region": "us-east-1"}}, "dev")

    # Then the CLI looks up the same pipeline stack
    assert pipeline_stack_name("dev") == environment.stack_name("pipeline") == "taxi-anomaly-dev-pipeline"


def test_pipeline_name_is_read_from_the_stack_output(cloudformation: StubbedClient) -> None:
    # Given the prod pipeline stack exposes its pipeline name as an output
    expect_stack_outputs(cloudformation, env_name="prod", outputs={"Other": "x", "PipelineName": "deployed-name"})

    # When resolving the pipeline name for prod
    name = resolve_pipeline_name(cloudformation.client, "prod")

    # Then it is the output's value (the stub also checked StackName=taxi-anomaly-prod-pipeline)
    assert name == "deployed-name"


def test_missing_pipeline_name_output_is_explained(cloudformation: StubbedClient) -> None:
    # Given a stack without the PipelineName output
    expect_stack_outputs(cloudformation, outputs={})

    # When resolving the pipeline name
    # Then the error names the stack and the output
    with pytest.raises(CliError, match="taxi-anomaly-dev-pipeline has no PipelineName output"):
        resolve_pipeline_name(cloudformation.client, "dev")


def test_missing_stack_is_explained(cloudformation: StubbedClient) -> None:
    # Given the environment's pipeline stack is not deployed
    cloudformation.stub.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id taxi-anomaly-qa-pipeline does not exist"
    )

    # When resolving the pipeline name
    # Then the error says which stack could not be read
    with pytest.raises(CliError, match="stack taxi-anomaly-qa-pipeline does not exist in us-east-1: deploy it with"):
        resolve_pipeline_name(cloudformation.client, "qa")


def test_start_with_wait_prints_each_step_change_and_succeeds(
    cloudformation: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, captured: CapturedOutput
) -> None:
    # Given a deployed pipeline whose execution runs to success over three polls
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)
    expect_start(sagemaker, [{"Name": "NumTrees", "Value": "100"}])
    expect_poll(sagemaker, "Executing", [step_state("PrepareData", "Executing")])
    expect_poll(sagemaker, "Executing", [step_state("PrepareData", "Executing")])
    expect_poll(
        sagemaker,
        "Succeeded",
        [
            step_state("PrepareData", "Succeeded"),
            step_state("TrainModel", "Succeeded"),
            step_state("CreateModel", "Succeeded"),
            step_state("ScoreData", "Succeeded"),
        ],
    )

    # When starting it with a parameter and waiting
    exit_code = start(cloudformation, sagemaker, sleep, captured, parameters={"NumTrees": "100"})

    # Then each step state change is printed once, timestamped, and the command succeeds
    assert exit_code == EXIT_OK
    assert captured.lines == [
        f"{TIMESTAMP}  started {EXECUTION_ARN}",
        f"{TIMESTAMP}  step PrepareData: Executing",
        f"{TIMESTAMP}  step PrepareData: Succeeded",
        f"{TIMESTAMP}  step TrainModel: Succeeded",
        f"{TIMESTAMP}  step CreateModel: Succeeded",
        f"{TIMESTAMP}  step ScoreData: Succeeded",
        f"{TIMESTAMP}  execution Succeeded",
    ]
    # And it waited the poll interval between polls, not after the end
    assert sleep.calls == [15, 15]


def test_start_with_wait_reports_the_failed_step_and_its_reason(
    cloudformation: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, captured: CapturedOutput
) -> None:
    # Given an execution whose training step fails
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)
    expect_start(sagemaker, [])
    expect_poll(sagemaker, "Executing", [step_state("PrepareData", "Succeeded"), step_state("TrainModel", "Executing")])
    expect_poll(
        sagemaker,
        "Failed",
        [
            step_state("PrepareData", "Succeeded"),
            step_state("TrainModel", "Failed", "ClientError: feature_dim 48 does not match the 12 columns of the data"),
        ],
        FailureReason="Step failure: One or multiple steps failed.",
    )

    # When starting and waiting
    exit_code = start(cloudformation, sagemaker, sleep, captured)

    # Then the failed step and the reasons are printed and the command fails
    assert exit_code == EXIT_EXECUTION_UNSUCCESSFUL
    assert captured.lines[-2:] == [
        f"{TIMESTAMP}  step TrainModel: Failed - ClientError: feature_dim 48 does not match the 12 columns of the data",
        f"{TIMESTAMP}  execution Failed - Step failure: One or multiple steps failed.",
    ]


def test_a_stopped_execution_is_not_a_success(
    cloudformation: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, captured: CapturedOutput
) -> None:
    # Given an execution someone stops
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)
    expect_start(sagemaker, [])
    expect_poll(sagemaker, "Stopped", [step_state("PrepareData", "Stopped")])

    # When starting and waiting
    exit_code = start(cloudformation, sagemaker, sleep, captured)

    # Then the command fails
    assert exit_code == EXIT_EXECUTION_UNSUCCESSFUL
    assert captured.lines[-1] == f"{TIMESTAMP}  execution Stopped"


def test_start_without_wait_returns_after_starting(
    cloudformation: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, captured: CapturedOutput
) -> None:
    # Given a deployed pipeline
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)
    expect_start(sagemaker, [{"Name": "InputLocation", "Value": "s3://raw/taxi/2024/"}])

    # When starting without --wait
    exit_code = start(
        cloudformation, sagemaker, sleep, captured, parameters={"InputLocation": "s3://raw/taxi/2024/"}, wait=False
    )

    # Then it prints the execution ARN and does not poll (no poll responses were queued)
    assert exit_code == EXIT_OK
    assert captured.lines == [f"{TIMESTAMP}  started {EXECUTION_ARN}"]


def test_unknown_parameter_fails_before_starting_and_lists_the_valid_names(
    cloudformation: StubbedClient, sagemaker: StubbedClient, sleep: RecordingSleep, captured: CapturedOutput
) -> None:
    # Given a deployed pipeline declaring InputLocation, OutputLocation and NumTrees
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)

    # When starting with a misspelt parameter
    # Then it fails naming the valid ones (start_pipeline_execution is not stubbed: calling it would error)
    with pytest.raises(
        CliError, match=r"unknown parameter\(s\) NumTree; valid: InputLocation, OutputLocation, NumTrees"
    ):
        start(cloudformation, sagemaker, sleep, captured, parameters={"NumTree": "100"})
    assert captured.lines == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20", r"--param NumTrees \(num_trees\) must be from 50 to 1000 \(Random Cut Forest's valid values\), got 20"),
        ("1001", r"must be from 50 to 1000"),
        ("many", r"--param NumTrees \(num_trees\) must be an integer from 50 to 1000, got 'many'"),
    ],
)
def test_a_hyperparameter_outside_rcfs_range_fails_before_starting(
    cloudformation: StubbedClient,
    sagemaker: StubbedClient,
    sleep: RecordingSleep,
    captured: CapturedOutput,
    value: str,
    message: str,
) -> None:
    # Given a deployed pipeline with the NumTrees parameter
    expect_stack_outputs(cloudformation)
    expect_deployed_parameters(sagemaker)

    # When starting with a tree count RCF does not accept (documented range 50..1000)
    # Then it fails naming the parameter and the range (start_pipeline_execution is not stubbed)
    with pytest.raises(CliError, match=message):
        start(cloudformation, sagemaker, sleep, captured, parameters={"NumTrees": value})
    assert captured.lines == []


def test_list_shows_recent_executions_newest_first(
    cloudformation: StubbedClient, sagemaker: StubbedClient, captured: CapturedOutput
) -> None:
    # Given two executions of the dev pipeline
    expect_stack_outputs(cloudformation)
    sagemaker.stub.add_response(
        "list_pipeline_executions",
        {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": EXECUTION_ARN, "PipelineExecutionStatus": "Executing", "StartTime": FIXED_NOW},
                {"PipelineExecutionArn": "arn:older", "PipelineExecutionStatus": "Failed", "StartTime": FIXED_NOW},
            ]
        },
        {"PipelineName": PIPELINE_NAME, "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 5},
    )

    # When listing
    exit_code = list_command(
        env_name="dev",
        limit=5,
        cloudformation=cloudformation.client,
        sagemaker=sagemaker.client,
        output=captured.output,
    )

    # Then each execution is a line with its start time, status and ARN
    assert exit_code == EXIT_OK
    assert captured.lines == [
        f"{TIMESTAMP}  2 most recent execution(s) of {PIPELINE_NAME}",
        f"  2024-05-01 12:00:00  Executing   {EXECUTION_ARN}",
        "  2024-05-01 12:00:00  Failed      arn:older",
    ]


def test_describe_shows_the_execution_and_every_step_across_pages(
    cloudformation: StubbedClient, sagemaker: StubbedClient, captured: CapturedOutput
) -> None:
    # Given a failed execution whose steps come back in two pages
    expect_stack_outputs(cloudformation)
    sagemaker.stub.add_response(
        "describe_pipeline_execution",
        {
            "PipelineArn": f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{PIPELINE_NAME}",
            "PipelineExecutionArn": EXECUTION_ARN,
            "PipelineExecutionStatus": "Failed",
            "CreationTime": FIXED_NOW,
            "FailureReason": "Step failure: One or multiple steps failed.",
        },
        {"PipelineExecutionArn": EXECUTION_ARN},
    )
    sagemaker.stub.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": [step_state("PrepareData", "Failed", "Glue job failed")], "NextToken": "page-2"},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending"},
    )
    sagemaker.stub.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": []},
        {"PipelineExecutionArn": EXECUTION_ARN, "SortOrder": "Ascending", "NextToken": "page-2"},
    )

    # When describing it
    exit_code = describe_command(
        env_name="dev",
        execution_arn=EXECUTION_ARN,
        cloudformation=cloudformation.client,
        sagemaker=sagemaker.client,
        output=captured.output,
    )

    # Then the status, reasons and steps are shown, and the exit code reflects the failure
    assert exit_code == EXIT_EXECUTION_UNSUCCESSFUL
    assert captured.lines == [
        f"{TIMESTAMP}  {EXECUTION_ARN}: Failed (started 2024-05-01 12:00:00)",
        "  failure reason: Step failure: One or multiple steps failed.",
        "  PrepareData  Failed     2024-05-01 12:00:00 -> -",
        "      failure reason: Glue job failed",
    ]


def test_describe_refuses_an_execution_of_another_environments_pipeline(
    cloudformation: StubbedClient, sagemaker: StubbedClient, captured: CapturedOutput
) -> None:
    # Given an execution ARN of the prod pipeline
    expect_stack_outputs(cloudformation)
    sagemaker.stub.add_response(
        "describe_pipeline_execution",
        {
            "PipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/taxi-anomaly-prod",
            "PipelineExecutionStatus": "Succeeded",
        },
        {"PipelineExecutionArn": EXECUTION_ARN},
    )

    # When describing it for dev
    # Then the mix-up is reported
    with pytest.raises(CliError, match="belongs to pipeline 'taxi-anomaly-prod', not dev's 'taxi-anomaly-dev'"):
        describe_command(
            env_name="dev",
            execution_arn=EXECUTION_ARN,
            cloudformation=cloudformation.client,
            sagemaker=sagemaker.client,
            output=captured.output,
        )


def test_main_rejects_a_malformed_parameter_without_calling_aws(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given fake credentials (the clients are built, but no call may happen before validation)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    # When running `start` with a parameter that is not Name=Value
    exit_code = main(["--region", "us-east-1", "start", "--env", "dev", "--param", "NumTrees"])

    # Then it exits with an error explaining the expected form
    assert exit_code == EXIT_ERROR
    assert "--param 'NumTrees' must look like Name=Value" in capsys.readouterr().err
