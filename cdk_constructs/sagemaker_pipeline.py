"""The SageMaker pipeline (callback prep -> RCF training -> model -> batch transform) and its role."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aws_cdk import ArnFormat, Fn, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.checker_skips import skip_cfn_lint
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.service_roles import service_principal
from ml_pipeline.definition import (
    ARTIFACTS_PREFIX,
    PREPARED_DATA_PREFIX,
    PipelineSettings,
    pipeline_definition,
)
from ml_pipeline.evaluation_bundle import write_evaluation_zip
from ml_pipeline.evaluation_image import evaluation_image_account
from ml_pipeline.rcf_image import rcf_image_uri


class SageMakerPipeline(Construct):
    """Registers the pipeline definition built by ml_pipeline.definition, with references filled in by CloudFormation.

    The definition is generated at synth with placeholders (``${CallbackQueueUrl}`` ...) that
    ``Fn::Sub`` replaces with this environment's queue, role and buckets at deploy time.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        callback_queue: sqs.IQueue,
        raw_bucket: s3.IBucket,
        prepared_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        approval_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Fails synth with a clear message for a region without the built-in RCF image.
        image_uri = rcf_image_uri(config.region)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=service_principal(self, "sagemaker.amazonaws.com"),
            description="Runs the taxi anomaly pipeline and its training and transform jobs",
        )
        self._grant_pipeline_permissions(stack, callback_queue, prepared_bucket, artifacts_bucket, image_uri)
        # The Evaluate step's code (evaluation_job + pipeline_evaluation) as one zip, and the registry group.
        self.evaluation_code = s3_assets.Asset(
            self, "EvaluationCode", path=str(write_evaluation_zip(Path(tempfile.mkdtemp()) / "evaluation-job.zip"))
        )
        code_key = self.evaluation_code.s3_object_key
        if Token.is_unresolved(code_key):
            raise ValueError("the evaluation code asset needs a synth-time object key (the default stack synthesizer)")
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=config.model_package_group_name,
            model_package_group_description="Random Cut Forest models of the taxi pipeline, registered after approval",
        )
        skip_cfn_lint(
            self.model_package_group,
            "E3006",
            "cfn-lint checks every region, and a few newer ones lack AWS::SageMaker::ModelPackageGroup in "
            "CloudFormation's specification; the stack deploys to its environment's region only, and the "
            "Random Cut Forest regions in cdk.json have it.",
        )
        self._grant_post_scoring_permissions(stack, config, approval_queue)

        definition = pipeline_definition(
            PipelineSettings.with_placeholders(config.pipeline_name, config.region, config.pipeline)
        )
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=config.pipeline_name,
            pipeline_display_name=config.pipeline_name,
            pipeline_description="Taxi passengers: prep (callback) -> Random Cut Forest -> batch scoring",
            role_arn=self.role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": Fn.sub(
                    definition,
                    {
                        "PipelineRoleArn": self.role.role_arn,
                        "CallbackQueueUrl": callback_queue.queue_url,
                        "RawBucket": raw_bucket.bucket_name,
                        "PreparedBucket": prepared_bucket.bucket_name,
                        "ArtifactsBucket": artifacts_bucket.bucket_name,
                        "ApprovalQueueUrl": approval_queue.queue_url,
                        "EvaluationCodeBucket": self.evaluation_code.s3_bucket_name,
                        "EvaluationCodeKey": code_key,
                        "EvaluationCodeFile": code_key.rsplit("/", 1)[-1],
                        "ModelPackageGroupName": self.model_package_group.model_package_group_name,
                    },
                )
            },
        )
        # The role's policy must exist before SageMaker validates the pipeline against it.
        if self.role.node.try_find_child("DefaultPolicy") is not None:
            self.pipeline.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        self.pipeline.node.add_dependency(self.model_package_group)
        self.pipeline_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=config.pipeline_name
        )
        if config.pipeline.schedule:
            self._add_schedule(config.pipeline.schedule)

    def _grant_pipeline_permissions(
        self,
        stack: Stack,
        callback_queue: sqs.IQueue,
        prepared_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        image_uri: str,
    ) -> None:
        role = self.role
        # The callback step puts its message on this one queue (and uses its key, if any).
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[callback_queue.queue_arn]))
        if callback_queue.encryption_master_key is not None:
            callback_queue.encryption_master_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")

        def sagemaker_arn(resource: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name="*")

        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                ],
                resources=[sagemaker_arn("training-job")],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:CreateModel"], resources=[sagemaker_arn("model")]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                ],
                resources=[sagemaker_arn("transform-job")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],
                resources=[sagemaker_arn("training-job"), sagemaker_arn("model"), sagemaker_arn("transform-job")],
            )
        )
        # The training job and the model run as this same role.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # Training reads the prepared data; the transform reads the scoring data and the model.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[prepared_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{PREPARED_DATA_PREFIX}*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[prepared_bucket.arn_for_objects(f"{PREPARED_DATA_PREFIX}*")]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{ARTIFACTS_PREFIX}*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[artifacts_bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}*")],
            )
        )
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_group],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        # The built-in RCF image lives in an AWS-owned registry of this region.
        registry_account = image_uri.split(".", 1)[0]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    stack.format_arn(
                        service="ecr", account=registry_account, resource="repository", resource_name="randomcutforest"
                    )
                ],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Job, model and object names are generated per pipeline execution: access is scoped to this account's "
            "SageMaker jobs/models, the prepared and artifacts prefixes, and SageMaker's own log groups; "
            "ecr:GetAuthorizationToken and the namespace-conditioned PutMetricData accept no resource ARN.",
            [
                matching(r"^Resource::arn:.*:sagemaker:.*:(training-job|model|transform-job)/\*$"),
                matching(rf"^Resource::.*/{PREPARED_DATA_PREFIX}\*$"),
                matching(rf"^Resource::.*/{ARTIFACTS_PREFIX}\*$"),
                matching(r"^Resource::arn:.*:logs:.*:log-group:/aws/sagemaker/\*$"),
                "Resource::*",
            ],
        )

    def _grant_post_scoring_permissions(
        self, stack: Stack, config: EnvironmentConfig, approval_queue: sqs.IQueue
    ) -> None:
        """Evaluate (a processing job in the scikit-learn image), ApproveResults (its queue), Register."""
        role = self.role
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[approval_queue.queue_arn]))
        if approval_queue.encryption_master_key is not None:
            approval_queue.encryption_master_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
        processing_jobs = stack.format_arn(service="sagemaker", resource="processing-job", resource_name="*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                resources=[processing_jobs],
            )
        )
        group_name = config.model_package_group_name
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
                resources=[
                    stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name),
                    stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    stack.format_arn(
                        service="ecr",
                        account=evaluation_image_account(config.region),
                        resource="repository",
                        resource_name="sagemaker-scikit-learn",
                    )
                ],
            )
        )
        self.evaluation_code.grant_read(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Processing job and model package names are generated per execution: access is limited to this "
            "account's processing jobs and the packages of this environment's one model package group; the "
            "evaluation code is read from its own CDK asset object.",
            [
                matching(r"^Resource::arn:.*:sagemaker:.*:processing-job/\*$"),
                matching(r"^Resource::arn:.*:sagemaker:.*:model-package/.*/\*$"),
                matching(r"^Action::s3:GetObject\*$"),
                matching(r"^Action::s3:GetBucket\*$"),
                matching(r"^Action::s3:List\*$"),
                matching(r"^Resource::arn:.*:s3:::.*/\*$"),
            ],
        )

    def _add_schedule(self, expression: str) -> None:
        """EventBridge Scheduler starts an execution with the definition's default parameters."""
        scheduler_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=service_principal(self, "scheduler.amazonaws.com"),
            description="Starts the taxi anomaly pipeline on its schedule",
        )
        scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn])
        )
        schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            description="Runs the taxi anomaly pipeline",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.pipeline_arn,
                role_arn=scheduler_role.role_arn,
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3),
            ),
        )
        schedule.node.add_dependency(self.pipeline)
