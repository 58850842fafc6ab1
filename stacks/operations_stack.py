"""Operator notifications for one environment: the topic every alarm publishes to."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.operations import OperationsTopic


class OperationsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.operations = OperationsTopic(
            self,
            "Operations",
            alarm_email=config.operations.alarm_email,
            destroy_with_stack=config.destroy_data_with_stack,
            stack_name_prefix=config.stack_name(""),
        )
        CfnOutput(self, "OperationsTopicArn", value=self.operations.topic.topic_arn)
