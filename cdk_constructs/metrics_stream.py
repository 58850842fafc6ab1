"""The Kinesis data stream the generator writes e-commerce events to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from app_config import StreamingConfig
from cdk_constructs.nag import acknowledge


class MetricsStream(Construct):
    """Encrypted (customer-managed key) stream; capacity mode from config."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StreamingConfig, destroy_with_stack: bool
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the e-commerce metrics stream",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=Duration.days(7),
        )
        on_demand = config.stream_mode == "ON_DEMAND"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            stream_mode=kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED,
            shard_count=None if on_demand else config.shard_count,
            retention_period=Duration.hours(24),
            removal_policy=removal,
        )
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "A customer-managed key is chosen on purpose: its key policy, rotation and CloudTrail usage are ours "
            "to control, and the stream's only producer and consumer are granted on it explicitly.",
        )


def existing_stream(scope: Construct, construct_id: str, config: StreamingConfig) -> kinesis.IStream:
    """The stream named by ``streaming.source_stream_arn`` (and its key, if it has a customer-managed one)."""
    if config.source_stream_arn is None:
        raise ValueError("streaming.source_stream_arn is not set")
    key = (
        kms.Key.from_key_arn(scope, f"{construct_id}Key", config.source_stream_kms_key_arn)
        if config.source_stream_kms_key_arn
        else None
    )
    return kinesis.Stream.from_stream_attributes(
        scope, construct_id, stream_arn=config.source_stream_arn, encryption_key=key
    )
