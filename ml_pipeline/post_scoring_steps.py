"""The steps after ScoreData: Evaluate (processing job + property file) -> ApproveResults (callback) -> Register.

- **Evaluate is a ProcessingStep**, not a LambdaStep: only a processing step can publish a
  `PropertyFile` whose values later steps read with `Std:JsonGet` (a LambdaStep has only flat output
  parameters), it reads the whole transform output from S3 as a ProcessingInput (no 15-minute or
  payload limit), and it runs as the pipeline's own role, so no extra function or grant is needed.
  The job is `evaluation_job` (shipped as a zip the stack uploads as an asset; Python runs a zip with
  a `__main__.py` directly) in AWS's scikit-learn image (Python 3.12 + numpy).
- **ApproveResults is a CallbackStep** on its own queue: the approval notifier mails a person, and the
  approval endpoint answers the step (approved_by / approval_comment outputs, or a failure).
- **Register is a RegisterModel step** (ModelStep over CreateModelPackage) into the environment's
  model package group, status Approved, with the evaluation report as its ModelQuality statistics. It
  reads ApproveResults' outputs, so it runs only after an approval; a rejection fails ApproveResults
  and the run ends there: nothing is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from approval.message import (
    APPROVAL_COMMENT_OUTPUT,
    APPROVED_BY_OUTPUT,
    CUTOFF_ARGUMENT,
    EVENT_COUNT_ARGUMENT,
    REPORT_URI_ARGUMENT,
    ROWS_SCORED_ARGUMENT,
)
from approval.report import CUTOFF_PATH, EVENT_COUNT_PATH, REPORT_FILE_NAME, ROWS_SCORED_PATH

EVALUATE_STEP = "Evaluate"
APPROVE_STEP = "ApproveResults"
REGISTER_STEP = "Register"
EVALUATION_PROPERTY_FILE = "EvaluationReport"
EVALUATION_OUTPUT = "evaluation"
# Container paths of the processing job (SageMaker copies inputs in and outputs out of these).
PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIRECTORY = f"{PROCESSING_ROOT}/input/code"
SCORES_DIRECTORY = f"{PROCESSING_ROOT}/input/scores"
EVALUATION_DIRECTORY = f"{PROCESSING_ROOT}/output/evaluation"
EVALUATION_INSTANCE_TYPE = "ml.t3.medium"
EVALUATION_MAX_RUNTIME_SECONDS = 1800
# RCF's documented inference formats: CSV, JSON Lines (what ScoreData sends) or RecordIO-protobuf in; JSON,
# JSON Lines or RecordIO-protobuf out.
REGISTERED_CONTENT_TYPES = ["application/jsonlines", "text/csv"]
REGISTERED_RESPONSE_TYPES = ["application/json", "application/jsonlines"]


@dataclass(frozen=True)
class PostScoringInputs:
    """What the earlier steps and the settings hand to these three steps."""

    session: Any
    role_arn: str
    region: str
    rcf_image_uri: str
    evaluation_image_uri: str
    evaluation_code_uri: str
    evaluation_code_file: str
    approval_queue_url: str
    model_package_group_name: str
    transform_instance_type: str
    execution_artifacts: Any
    scores_uri: Any
    model_data: Any


def post_scoring_steps(inputs: PostScoringInputs) -> list[Any]:
    evaluate, report = _evaluate_step(inputs)
    approve = _approve_step(inputs, evaluate, report)
    register = _register_step(inputs, evaluate, approve)
    return [evaluate, approve, register]


def _evaluate_step(inputs: PostScoringInputs) -> tuple[Any, Any]:
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    processor = Processor(
        role=inputs.role_arn,
        image_uri=inputs.evaluation_image_uri,
        instance_count=1,
        instance_type=EVALUATION_INSTANCE_TYPE,
        entrypoint=["python3", f"{CODE_DIRECTORY}/{inputs.evaluation_code_file}"],
        base_job_name="taxi-evaluate",
        max_runtime_in_seconds=EVALUATION_MAX_RUNTIME_SECONDS,
        sagemaker_session=inputs.session,
    )
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name=EVALUATION_OUTPUT, path=REPORT_FILE_NAME)
    arguments = processor.run(
        inputs=[
            ProcessingInput(
                input_name="code",
                s3_input=ProcessingS3Input(
                    s3_uri=inputs.evaluation_code_uri,
                    local_path=CODE_DIRECTORY,
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            ),
            ProcessingInput(
                input_name="scores",
                s3_input=ProcessingS3Input(
                    s3_uri=inputs.scores_uri,
                    local_path=SCORES_DIRECTORY,
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            ),
        ],
        outputs=[
            ProcessingOutput(
                output_name=EVALUATION_OUTPUT,
                s3_output=ProcessingS3Output(
                    s3_uri=Join(on="/", values=[inputs.execution_artifacts, EVALUATION_OUTPUT]),
                    local_path=EVALUATION_DIRECTORY,
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
        arguments=[
            "--scores",
            SCORES_DIRECTORY,
            "--output",
            EVALUATION_DIRECTORY,
            "--execution-arn",
            ExecutionVariables.PIPELINE_EXECUTION_ARN,
        ],
    )
    return ProcessingStep(name=EVALUATE_STEP, step_args=arguments, property_files=[report]), report


def _approve_step(inputs: PostScoringInputs, evaluate: Any, report: Any) -> Any:
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import CallbackOutput, CallbackStep

    evaluation_prefix = evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT].S3Output.S3Uri

    def reported(path: str) -> Any:
        return JsonGet(step_name=EVALUATE_STEP, property_file=report, json_path=path)

    return CallbackStep(
        name=APPROVE_STEP,
        sqs_queue_url=inputs.approval_queue_url,
        inputs={
            REPORT_URI_ARGUMENT: Join(on="/", values=[evaluation_prefix, REPORT_FILE_NAME]),
            ROWS_SCORED_ARGUMENT: reported(ROWS_SCORED_PATH),
            EVENT_COUNT_ARGUMENT: reported(EVENT_COUNT_PATH),
            CUTOFF_ARGUMENT: reported(CUTOFF_PATH),
        },
        outputs=[CallbackOutput(output_name=APPROVED_BY_OUTPUT), CallbackOutput(output_name=APPROVAL_COMMENT_OUTPUT)],
    )


@dataclass(frozen=True)
class _RegistrySource:
    """What ModelStep expects as the origin of a CreateModelPackage request: something with a session."""

    sagemaker_session: Any


def _register_step(inputs: PostScoringInputs, evaluate: Any, approve: Any) -> Any:
    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep

    session = inputs.session
    evaluation_prefix = evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT].S3Output.S3Uri
    # The same capture ModelBuilder.register() does under a PipelineSession, without its IAM/S3 lookups.
    session.init_model_step_arguments(_RegistrySource(session))
    create_model_package_from_containers(
        session,
        containers=[{"Image": inputs.rcf_image_uri, "ModelDataUrl": inputs.model_data}],
        content_types=REGISTERED_CONTENT_TYPES,
        response_types=REGISTERED_RESPONSE_TYPES,
        transform_instances=[inputs.transform_instance_type],
        model_package_group_name=inputs.model_package_group_name,
        model_metrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": Join(on="/", values=[evaluation_prefix, REPORT_FILE_NAME]),
                }
            }
        },
        approval_status="Approved",
        customer_metadata_properties={
            APPROVED_BY_OUTPUT: approve.properties.Outputs[APPROVED_BY_OUTPUT],
            APPROVAL_COMMENT_OUTPUT: approve.properties.Outputs[APPROVAL_COMMENT_OUTPUT],
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
        },
    )
    arguments = session.context
    session.context = None
    # The SDK always writes SkipModelValidation "None", CreateModelPackage's default ("Valid Values: None | All";
    # leaving it out means no skip). Left out, the step is the same request and one field closer to AWS's
    # published pipeline-definition schema, which lacks the field (ml_pipeline.schema_check).
    request = arguments.create_model_package_request
    if request.get("SkipModelValidation") == "None":
        del request["SkipModelValidation"]
    return ModelStep(name=REGISTER_STEP, step_args=arguments)
