"""Stateful resources (buckets, the metrics stream) kept apart so compute stacks can be replaced freely."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.approval_table import ApprovalTable
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.data_buckets import DataBuckets
from cdk_constructs.metrics_stream import MetricsStream


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.buckets = DataBuckets(self, "Buckets", destroy_with_stack=config.destroy_data_with_stack)
        # With streaming.source_stream_arn the streaming stack reads your stream and none is created here.
        self.metrics_stream = (
            MetricsStream(
                self, "MetricsStream", config=config.streaming, destroy_with_stack=config.destroy_data_with_stack
            )
            if config.streaming.source_stream_arn is None
            else None
        )
        for output_id, bucket in (
            ("RawBucketName", self.buckets.raw),
            ("PreparedBucketName", self.buckets.prepared),
            ("ArtifactsBucketName", self.buckets.artifacts),
            ("MetricsBucketName", self.buckets.metrics),
        ):
            CfnOutput(self, output_id, value=bucket.bucket_name)
        if self.metrics_stream is not None:
            CfnOutput(self, "MetricsStreamName", value=self.metrics_stream.stream.stream_name)
        # Durable per-token record of the callback steps (stateful, so it lives here).
        self.callback_table = CallbackTokenTable(
            self, "CallbackTokens", keep_data=not config.destroy_data_with_stack
        )
        CfnOutput(self, "CallbackTokenTableName", value=self.callback_table.table.table_name)
        # The approval requests behind the approval e-mails' links (the CLI finds it through this output).
        self.approval_table = ApprovalTable(self, "ApprovalTable", destroy_with_stack=config.destroy_data_with_stack)
        CfnOutput(self, "ApprovalTableName", value=self.approval_table.table.table_name)
