"""The approval requests table (stateful: lives in the storage stack). Layout: approval/store.py."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from approval.store import OPEN_INDEX, TTL_ATTRIBUTE


class ApprovalTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, destroy_with_stack: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=not destroy_with_stack,
            removal_policy=RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=OPEN_INDEX,
                    partition_key=dynamodb.Attribute(name="open_shard", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="open_due", type=dynamodb.AttributeType.NUMBER),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            ],
        )
