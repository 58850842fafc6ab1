"""The human approval of a pipeline run: ApproveResults' queue, the approvers topic, notifier, page, expiry."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.approval_workflow import ApprovalWorkflow
from cdk_constructs.operations import Alarms


class ApprovalStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        table: dynamodb.ITableV2,
        artifacts_bucket: s3.IBucket,
        operations_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarms = Alarms(self, "Alarms", topic=operations_topic, alarm_prefix=f"taxi-anomaly-{config.name}")
        self.workflow = ApprovalWorkflow(
            self, "Approval", config=config, table=table, artifacts_bucket=artifacts_bucket, alarms=self.alarms
        )
        self.alarms.alarm_on_dead_letters(
            "approval-event-target-dead-letters",
            self.alarms.event_dead_letter_queue,
            "EventBridge could not deliver the approval expiry schedule to its Lambda; inspect the DLQ.",
        )
