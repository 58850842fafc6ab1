"""The durable per-token record of callback steps (DynamoDB): who started, stopped and answered each step.

On-demand, encrypted with a customer-managed key, TTL on ``expires_at``, point-in-time recovery where
data is kept (prod), and a sparse index of the records that still need attention (the reconciler's).
Stateful: it lives in the storage stack. The item layout is ``pipeline_callback.token_records``.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from app_config import DataPrepConfig
from cdk_constructs.checker_skips import skip_checkov
from cdk_constructs.nag import acknowledge
from pipeline_callback.token_records import OPEN_INDEX_NAME, TOKEN_KEY, TTL_ATTRIBUTE

# A start lease outlasts the handler by a margin: a live handler never loses it to a redelivery.
LEASE_MARGIN_SECONDS = 60


class CallbackTokenTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, keep_data: bool) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if keep_data else RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the callback-token table",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=Duration.days(7),
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=TOKEN_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=keep_data
            ),
            deletion_protection=keep_data,
            removal_policy=removal,
        )
        self.table.add_global_secondary_index(
            index_name=OPEN_INDEX_NAME,
            partition_key=dynamodb.Attribute(name="open", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        if not keep_data:
            acknowledge(
                self.table,
                "AwsSolutions-DDB3",
                "In this environment data is destroyed with the stack by design; the table holds only per-execution "
                "coordination records that expire after a few days, so point-in-time recovery is enabled where "
                "data is kept (prod) only.",
            )
            skip_checkov(
                self.table,
                "CKV_AWS_28",
                "In this environment data is destroyed with the stack by design; the records are short-lived "
                "coordination state, and point-in-time recovery is enabled where data is kept (prod).",
            )

    def grant_record_access(self, role: iam.IRole) -> None:
        """Read, conditionally write and list open records: no Scan, no Delete, no Put of whole items."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[self.table.table_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{self.table.table_arn}/index/{OPEN_INDEX_NAME}"]
            )
        )
        self.key.grant(role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")

    def environment(self, config: DataPrepConfig) -> dict[str, str]:
        """What pipeline_callback.token_records.load_record_settings reads."""
        return {
            "CALLBACK_TABLE_NAME": self.table.table_name,
            "CALLBACK_DEADLINE_SECONDS": str(config.callback_deadline_minutes * 60),
            "CALLBACK_RECORD_TTL_DAYS": str(config.callback_record_ttl_days),
            "START_LEASE_SECONDS": str(config.handler_timeout_seconds + LEASE_MARGIN_SECONDS),
        }
