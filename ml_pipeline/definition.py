"""The taxi anomaly SageMaker Pipeline, built with the SageMaker Python SDK v3 workflow API.

PrepareData (callback: our Glue prep job) -> TrainModel (built-in Random Cut Forest)
-> CreateModel -> ScoreData (batch transform that joins an anomaly score to each window)
-> Evaluate -> ApproveResults (callback: a person, by e-mail) -> Register (ml_pipeline.post_scoring_steps).

Generation is pure: no AWS credentials, region or network are needed, so `cdk synth` and the
local mode can call it anywhere. The SDK fights this in a few places; `_offline_sdk` documents
each workaround. The SDK is imported lazily (it takes seconds) inside the functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app_config import PipelineConfig
from glue_scripts.features.window_features import FEATURE_DIM
from ml_pipeline.evaluation_image import evaluation_image_uri
from ml_pipeline.post_scoring_steps import PostScoringInputs, post_scoring_steps
from ml_pipeline.rcf_hyperparameters import check_rcf_hyperparameters
from ml_pipeline.rcf_image import rcf_image_uri

# The scoring record's fields, as the prep job writes them (glue_scripts/taxi_prep.py) and the evaluation
# reads them back (pipeline_evaluation/transform_output.py); tests check the three agree.
SCORING_WINDOW_START = "window_start"
SCORING_OBSERVED = "passengers"
SCORING_EXPECTED = "expected"
SCORING_RCF_INPUT = "rcf_input"
TRANSFORM_OUTPUT_FIELD = "SageMakerOutput"

if TYPE_CHECKING:
    from sagemaker.mlops.workflow import Pipeline

# CloudFormation Fn::Sub variables the CDK stack substitutes in the definition.
DEFINITION_PLACEHOLDERS: tuple[str, ...] = (
    "PipelineRoleArn",
    "CallbackQueueUrl",
    "RawBucket",
    "PreparedBucket",
    "ArtifactsBucket",
    "ApprovalQueueUrl",
    "EvaluationCodeBucket",
    "EvaluationCodeKey",
    "EvaluationCodeFile",
    "ModelPackageGroupName",
)

PREPARE_DATA_STEP = "PrepareData"
TRAIN_STEP = "TrainModel"
CREATE_MODEL_STEP = "CreateModel"
SCORE_STEP = "ScoreData"

# Output parameters the callback handler reports on SendPipelineExecutionStepSuccess.
TRAINING_DATA_OUTPUT = "s3_data_out"
SCORING_DATA_OUTPUT = "s3_scoring_data"

INPUT_LOCATION_PARAMETER = "InputLocation"
OUTPUT_LOCATION_PARAMETER = "OutputLocation"
TRAINING_INSTANCE_TYPE_PARAMETER = "TrainingInstanceType"
TRAINING_INSTANCE_COUNT_PARAMETER = "TrainingInstanceCount"
TRANSFORM_INSTANCE_TYPE_PARAMETER = "TransformInstanceType"
NUM_SAMPLES_PER_TREE_PARAMETER = "NumSamplesPerTree"
NUM_TREES_PARAMETER = "NumTrees"

# Key prefixes under the buckets, so the execution role's S3 access can be scoped to them.
RAW_DATA_PREFIX = "taxi/"
PREPARED_DATA_PREFIX = "taxi/"
ARTIFACTS_PREFIX = "pipeline-executions/"

TRAINING_MAX_RUNTIME_SECONDS = 3600

# The batch transform, in formats Random Cut Forest documents, joined the way batch transform documents:
# - Input: the prep job's scoring/ JSON Lines, one window per line:
#   {"window_start": ..., "passengers": ..., "expected": ..., "rcf_input": {"features": [...]}}.
#   SplitType Line: "If you set the input and output formats to application/jsonlines, you can set both
#   SplitType and AssemblyType to line" (Associate Prediction Results with Input Records).
# - InputFilter "$.rcf_input" hands RCF a record in its JSON Lines request format: "A single record in dense
#   format can be represented as { "features": [1.5, 16.0, 14.0, 23.0] }" (Common Data Formats for Inference).
# - Accept application/jsonlines, AssembleWith Line: RCF's "JSONLINES Response Format. ACCEPT:
#   application/jsonlines. {"score": 0.02}" (RCF Response Formats); "While running batch transform, it's
#   recommended to use jsonlines response type instead of JSON" (Use Batch Transform with Built-in Algorithms).
#   RCF documents no text/csv response.
# - JoinSource Input: "For JSON or JSONLines objects ... SageMaker adds the transformed data to the input JSON
#   object in an attribute called SageMakerOutput" (DataProcessing), and "If you use an algorithm with the
#   DataProcessing structure, it must support your chosen format for both input and output files".
# - OutputFilter keeps the window and the answer, in the documented "$['id','SageMakerOutput']" form; each
#   output line is {"window_start": ..., "passengers": ..., "expected": ..., "SageMakerOutput": {"score": ...}}.
TRANSFORM_CONTENT_TYPE = "application/jsonlines"
TRANSFORM_ACCEPT = "application/jsonlines"
TRANSFORM_INPUT_FILTER = f"$.{SCORING_RCF_INPUT}"
TRANSFORM_OUTPUT_FILTER = (
    f"$['{SCORING_WINDOW_START}','{SCORING_OBSERVED}','{SCORING_EXPECTED}','{TRANSFORM_OUTPUT_FIELD}']"
)

# The SDK logs routine notes (e.g. "Popping out 'TrainingJobName'") at INFO/WARNING while building.
_SDK_LOGGERS = ("sagemaker", "sagemaker.config")
_TELEMETRY_OPT_OUT_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
# ModelTrainer insists on an ARN-shaped role at construction; the real one (often a
# CloudFormation placeholder) is assigned right after, so this value never reaches the definition.
_ROLE_STAND_IN = "arn:aws:iam::000000000000:role/definition-stand-in"


def placeholder(name: str) -> str:
    """The Fn::Sub form of one of DEFINITION_PLACEHOLDERS."""
    if name not in DEFINITION_PLACEHOLDERS:
        raise ValueError(f"unknown placeholder {name!r}; valid: {', '.join(DEFINITION_PLACEHOLDERS)}")
    return "${" + name + "}"


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_name: str
    region: str
    role_arn: str
    callback_queue_url: str
    raw_bucket: str
    prepared_bucket: str
    artifacts_bucket: str
    pipeline: PipelineConfig
    # The post-scoring steps (ml_pipeline.post_scoring_steps): approval queue, evaluation code, registry.
    approval_queue_url: str
    # s3://<evaluation_code_bucket>/<evaluation_code_key> is the job's zip; its file name is the last part.
    evaluation_code_bucket: str
    evaluation_code_key: str
    evaluation_code_file: str
    model_package_group_name: str

    @classmethod
    def with_placeholders(cls, pipeline_name: str, region: str, pipeline: PipelineConfig) -> PipelineSettings:
        """Settings for the CDK stack, which substitutes the placeholders with Fn::Sub."""
        return cls(
            pipeline_name=pipeline_name,
            region=region,
            role_arn=placeholder("PipelineRoleArn"),
            callback_queue_url=placeholder("CallbackQueueUrl"),
            raw_bucket=placeholder("RawBucket"),
            prepared_bucket=placeholder("PreparedBucket"),
            artifacts_bucket=placeholder("ArtifactsBucket"),
            pipeline=pipeline,
            approval_queue_url=placeholder("ApprovalQueueUrl"),
            evaluation_code_bucket=placeholder("EvaluationCodeBucket"),
            evaluation_code_key=placeholder("EvaluationCodeKey"),
            evaluation_code_file=placeholder("EvaluationCodeFile"),
            model_package_group_name=placeholder("ModelPackageGroupName"),
        )


def pipeline_definition(settings: PipelineSettings) -> str:
    """The pipeline definition JSON (as CreatePipeline's PipelineDefinition takes it)."""
    pipeline = build_pipeline(settings)
    # Steps render their job requests lazily, so rendering needs the same offline guard.
    with _offline_sdk(settings.region):
        return str(pipeline.definition())


def rcf_hyperparameter_defaults(config: PipelineConfig) -> dict[str, int]:
    """feature_dim (fixed by the prep job's features) and the tree settings' defaults, range-checked."""
    return check_rcf_hyperparameters(
        {
            "feature_dim": FEATURE_DIM,
            "num_samples_per_tree": config.num_samples_per_tree,
            "num_trees": config.num_trees,
        }
    )


# Pipeline parameters that are RCF hyperparameters: the CLI checks --param values for them.
HYPERPARAMETER_OF_PARAMETER = {
    NUM_SAMPLES_PER_TREE_PARAMETER: "num_samples_per_tree",
    NUM_TREES_PARAMETER: "num_trees",
}


def build_pipeline(settings: PipelineSettings) -> Pipeline:
    """The SDK Pipeline object. Its session can never call AWS: deploy the definition with CDK."""
    rcf_hyperparameter_defaults(settings.pipeline)  # out-of-range values fail here, before any SDK work
    image_uri = rcf_image_uri(settings.region)  # before the slow SDK work: an unsupported region fails fast
    evaluation_image = evaluation_image_uri(settings.region)
    with _offline_sdk(settings.region) as boto_session:
        return _build_pipeline(settings, _offline_pipeline_session(boto_session), image_uri, evaluation_image)


def _build_pipeline(settings: PipelineSettings, session: Any, image_uri: str, evaluation_image: str) -> Pipeline:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow import CallbackOutput, CallbackStep, Pipeline

    config = settings.pipeline
    input_location = ParameterString(
        INPUT_LOCATION_PARAMETER, default_value=f"s3://{settings.raw_bucket}/{RAW_DATA_PREFIX}"
    )
    output_location = ParameterString(
        OUTPUT_LOCATION_PARAMETER, default_value=f"s3://{settings.prepared_bucket}/{PREPARED_DATA_PREFIX}"
    )
    training_instance_type = ParameterString(
        TRAINING_INSTANCE_TYPE_PARAMETER, default_value=config.training_instance_type
    )
    training_instance_count = ParameterInteger(
        TRAINING_INSTANCE_COUNT_PARAMETER, default_value=config.training_instance_count
    )
    transform_instance_type = ParameterString(
        TRANSFORM_INSTANCE_TYPE_PARAMETER, default_value=config.transform_instance_type
    )
    num_samples_per_tree = ParameterInteger(NUM_SAMPLES_PER_TREE_PARAMETER, default_value=config.num_samples_per_tree)
    num_trees = ParameterInteger(NUM_TREES_PARAMETER, default_value=config.num_trees)

    prepare_data = CallbackStep(
        name=PREPARE_DATA_STEP,
        sqs_queue_url=settings.callback_queue_url,
        inputs={
            "input_location": input_location,
            # Unique per execution so reruns never mix their prepared files.
            "output_location": Join(on="", values=[output_location, ExecutionVariables.PIPELINE_EXECUTION_ID, "/"]),
        },
        outputs=[CallbackOutput(output_name=TRAINING_DATA_OUTPUT), CallbackOutput(output_name=SCORING_DATA_OUTPUT)],
    )
    execution_artifacts = Join(
        on="/",
        values=[
            f"s3://{settings.artifacts_bucket}",
            ARTIFACTS_PREFIX.rstrip("/"),
            ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )

    train = _training_step(
        settings=settings,
        session=session,
        image_uri=image_uri,
        training_data=prepare_data.properties.Outputs[TRAINING_DATA_OUTPUT],
        output_path=Join(on="/", values=[execution_artifacts, "model"]),
        instance_type=training_instance_type,
        instance_count=training_instance_count,
        # RCF reads hyperparameters as strings; feature_dim is fixed by the features the prep job writes.
        hyperparameters={
            "feature_dim": str(FEATURE_DIM),
            "num_samples_per_tree": num_samples_per_tree.to_string(),
            "num_trees": num_trees.to_string(),
        },
    )
    create_model = _create_model_step(
        settings=settings,
        session=session,
        image_uri=image_uri,
        model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
    )
    score = _transform_step(
        session=session,
        model_name=create_model.properties.ModelName,
        scoring_data=prepare_data.properties.Outputs[SCORING_DATA_OUTPUT],
        output_path=Join(on="/", values=[execution_artifacts, "scores"]),
        instance_type=transform_instance_type,
    )
    evaluate, approve, register = post_scoring_steps(
        PostScoringInputs(
            session=session,
            role_arn=settings.role_arn,
            region=settings.region,
            rcf_image_uri=image_uri,
            evaluation_image_uri=evaluation_image,
            evaluation_code_uri=f"s3://{settings.evaluation_code_bucket}/{settings.evaluation_code_key}",
            evaluation_code_file=settings.evaluation_code_file,
            approval_queue_url=settings.approval_queue_url,
            model_package_group_name=settings.model_package_group_name,
            transform_instance_type=config.transform_instance_type,
            execution_artifacts=execution_artifacts,
            scores_uri=score.properties.TransformOutput.S3OutputPath,
            model_data=train.properties.ModelArtifacts.S3ModelArtifacts,
        )
    )
    return Pipeline(
        name=settings.pipeline_name,
        parameters=[
            input_location,
            output_location,
            training_instance_type,
            training_instance_count,
            transform_instance_type,
            num_samples_per_tree,
            num_trees,
        ],
        steps=[prepare_data, train, create_model, score, evaluate, approve, register],
        sagemaker_session=session,
        # No automatic Experiments/Trials: they need extra IAM actions and nothing reads them.
        pipeline_experiment_config=None,
    )


def _training_step(
    *,
    settings: PipelineSettings,
    session: Any,
    image_uri: str,
    training_data: Any,
    output_path: Any,
    instance_type: Any,
    instance_count: Any,
    hyperparameters: dict[str, Any],
) -> Any:
    from sagemaker.core.shapes import Channel, DataSource, OutputDataConfig, S3DataSource, StoppingCondition
    from sagemaker.core.training.configs import Compute
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    trainer = ModelTrainer(
        training_image=image_uri,
        role=_ROLE_STAND_IN,
        sagemaker_session=session,
        base_job_name="taxi-rcf",
        compute=Compute(instance_type=instance_type, instance_count=instance_count),
        hyperparameters=hyperparameters,
        input_data_config=[
            Channel(
                channel_name="train",
                content_type="text/csv;label_size=0",
                data_source=DataSource(
                    s3_data_source=S3DataSource(
                        s3_data_type="S3Prefix",
                        s3_uri=training_data,
                        # Each instance trains on its own files: RCF's recommended distribution.
                        s3_data_distribution_type="ShardedByS3Key",
                    )
                ),
            )
        ],
        output_data_config=OutputDataConfig(s3_output_path=output_path),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAINING_MAX_RUNTIME_SECONDS),
    )
    trainer.role = settings.role_arn
    with _telemetry_opted_out(session):
        training_arguments = trainer.train()
    return TrainingStep(name=TRAIN_STEP, step_args=training_arguments)


@dataclass(frozen=True)
class _ModelSource:
    """What ModelStep expects as the origin of a CreateModel request: something with a session."""

    sagemaker_session: Any


def _create_model_step(*, settings: PipelineSettings, session: Any, image_uri: str, model_data: Any) -> Any:
    from sagemaker.mlops.workflow import ModelStep

    # ModelBuilder.build() (the v3 producer of ModelStep arguments) resolves and validates the
    # role through IAM even under a PipelineSession, which breaks offline generation and
    # placeholders. This is the same capture it does: PipelineSession intercepts create_model.
    session.init_model_step_arguments(_ModelSource(session))
    session.create_model(
        name=None,
        role=settings.role_arn,
        container_defs={"Image": image_uri, "ModelDataUrl": model_data},
    )
    model_step_arguments = session.context
    session.context = None
    return ModelStep(name=CREATE_MODEL_STEP, step_args=model_step_arguments)


def _transform_step(*, session: Any, model_name: Any, scoring_data: Any, output_path: Any, instance_type: Any) -> Any:
    from sagemaker.core.transformer import Transformer
    from sagemaker.mlops.workflow import TransformStep

    # Formats and filters: see TRANSFORM_CONTENT_TYPE above.
    transformer = Transformer(
        model_name=model_name,
        instance_count=1,
        instance_type=instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        accept=TRANSFORM_ACCEPT,
        output_path=output_path,
        sagemaker_session=session,
    )
    transform_arguments = transformer.transform(
        data=scoring_data,
        content_type=TRANSFORM_CONTENT_TYPE,
        split_type="Line",
        input_filter=TRANSFORM_INPUT_FILTER,
        join_source="Input",
        output_filter=TRANSFORM_OUTPUT_FILTER,
    )
    return TransformStep(name=SCORE_STEP, step_args=transform_arguments)


def _offline_pipeline_session(boto_session: Any) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class OfflinePipelineSession(PipelineSession):  # type: ignore[misc]
        """A PipelineSession that can never reach IAM or S3 while the definition is built."""

        def expand_role(self, role: str) -> str:
            # Roles are always full ARNs or Fn::Sub placeholders: never look them up in IAM.
            return role

        def default_bucket(self) -> str:
            # Every S3 path is explicit; an implicit default bucket would also escape the IAM scoping.
            raise RuntimeError("the pipeline definition must not depend on the SageMaker default bucket")

    session = OfflinePipelineSession(boto_session=boto_session, sagemaker_config=_TELEMETRY_OPT_OUT_CONFIG)
    # No SDK defaults: the definition must not pick up a developer's local SDK config files, and
    # the SDK re-validates a non-empty config against its schema on every lookup (~0.4 s each).
    session.sagemaker_config = {}
    return session


@contextlib.contextmanager
def _telemetry_opted_out(session: Any) -> Iterator[None]:
    """Around SDK calls that emit telemetry (only ModelTrainer.train here): opt out for them."""
    session.sagemaker_config = _TELEMETRY_OPT_OUT_CONFIG
    try:
        yield
    finally:
        session.sagemaker_config = {}


@contextlib.contextmanager
def _offline_sdk(region: str) -> Iterator[Any]:
    """Let the SDK import and build steps with no credentials, region or network; undo it after.

    - `import sagemaker.mlops` creates boto3 clients from boto3's default session at import
      time (NoRegionError without a region, and an IMDS credential probe): during the import
      the default session is a region-pinned session whose credential chain is empty.
    - TransformStep builds a throwaway LocalSession from the plain environment, so a region
      must be there (set only if none is) and the EC2 metadata credential probe is switched off.
    - ModelTrainer validates its role with iam:SimulatePrincipalPolicy unless
      SAGEMAKER_VALIDATE_ROLE=false (the SDK's documented opt-out).
    The UserWarning "Running within a PipelineSession ...", the SDK's internal DeprecationWarnings
    and its routine log notes are expected here and silenced.
    Not thread-safe (process environment); synth and the local mode are single-threaded.
    """
    import boto3
    import botocore.credentials
    import botocore.session

    botocore_session = botocore.session.Session()
    botocore_session.register_component("credential_provider", botocore.credentials.CredentialResolver(providers=[]))
    boto_session = boto3.Session(botocore_session=botocore_session, region_name=region)

    environment = {"SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        environment["AWS_DEFAULT_REGION"] = region
    saved_environment = {name: os.environ.get(name) for name in environment}
    saved_default_session = boto3.DEFAULT_SESSION
    saved_logger_levels: dict[str, int] = {}
    os.environ.update(environment)
    boto3.DEFAULT_SESSION = boto_session
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker(\.|$)")
            _import_sdk_keeping_root_logger()
            for name in _SDK_LOGGERS:
                saved_logger_levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.ERROR)
            yield boto_session
    finally:
        boto3.DEFAULT_SESSION = saved_default_session
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, level in saved_logger_levels.items():
            logging.getLogger(name).setLevel(level)


def _import_sdk_keeping_root_logger() -> None:
    """Import the SDK (creating its import-time clients, see `_offline_sdk`), undoing its logging setup.

    An SDK module calls logging.basicConfig(level=INFO) on import, which would make every INFO
    record of the host process (the CDK app, the local mode) print; the host owns the root logger.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        import sagemaker.mlops.workflow  # noqa: F401
    finally:
        for handler in [handler for handler in root.handlers if handler not in saved_handlers]:
            root.removeHandler(handler)
        root.setLevel(saved_level)
