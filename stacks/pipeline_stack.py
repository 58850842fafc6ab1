"""The SageMaker pipeline of one environment, wired to that environment's queue and buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.sagemaker_pipeline import SageMakerPipeline
from ml_pipeline.cli import PIPELINE_NAME_OUTPUT_KEY


class PipelineStack(Stack):
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
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.pipeline = SageMakerPipeline(
            self,
            "TaxiAnomalyPipeline",
            config=config,
            callback_queue=callback_queue,
            raw_bucket=raw_bucket,
            prepared_bucket=prepared_bucket,
            artifacts_bucket=artifacts_bucket,
            approval_queue=approval_queue,
        )
        # The CLI finds the pipeline through this output, never through a hard-coded name.
        CfnOutput(self, PIPELINE_NAME_OUTPUT_KEY, value=self.pipeline.pipeline.ref)
        CfnOutput(self, "PipelineExecutionRoleArn", value=self.pipeline.role.role_arn)
        CfnOutput(self, "ModelPackageGroupName", value=self.pipeline.model_package_group.model_package_group_name)
