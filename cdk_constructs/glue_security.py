"""A Glue security configuration: KMS-encrypted CloudWatch logs and job bookmarks, SSE-S3 output."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_constructs.nag import acknowledge, matching

GLUE_METRICS_NAMESPACE = "Glue"  # where --enable-metrics / --enable-observability-metrics publish


class GlueSecurity(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, destroy_with_stack: bool) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts Glue job logs and bookmarks",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN,
            pending_window=Duration.days(7),
        )
        # CloudWatch Logs encrypts the job's log groups with this key on Glue's behalf.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForGlueLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="/aws-glue/*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        self.configuration = glue.CfnSecurityConfiguration(
            self,
            "Configuration",
            name=Names.unique_resource_name(self, max_length=128),
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.key.key_arn
                ),
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(s3_encryption_mode="SSE-S3")],
            ),
        )

    def grant_job_role(self, role: iam.IRole) -> None:
        """What a job using this configuration needs: write encrypted logs, use the key."""
        stack = Stack.of(self)
        self.key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws-glue/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        # Job metrics (--enable-metrics, --enable-observability-metrics, the Kinesis consumer lag) are published
        # by the job's role. PutMetricData has no resource type in the IAM service reference; the
        # cloudwatch:namespace condition key limits it to Glue's namespace.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": GLUE_METRICS_NAMESPACE}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Glue writes to log groups it names per run under /aws-glue/; the prefix is the narrowest scope. "
            "PutMetricData accepts no resource ARN and is limited to the Glue namespace by condition.",
            [matching(r"^Resource::arn:.*:logs:.*:log-group:/aws-glue/\*$"), "Resource::*"],
        )
