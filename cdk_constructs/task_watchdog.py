"""Fails the pipeline step when a prep task stops without having reported (OOM, stop, placement...)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.prep_task import CONTAINER_NAME, SENDS_CALLBACKS, PrepTask
from cdk_constructs.python_function import FunctionSpec, PythonFunction


class TaskWatchdog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        task: PrepTask,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self,
            "Watchdog",
            spec=FunctionSpec(
                package="task_watchdog",
                description="Sends a failure callback when a prep task stops without reporting",
                environment={"CONTAINER_NAME": CONTAINER_NAME},
                shared_packages=("pipeline_callback",),
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        self.function.role.add_to_principal_policy(iam.PolicyStatement(actions=[SENDS_CALLBACKS[1]], resources=["*"]))
        self.rule = events.Rule(
            self,
            "TaskStoppedRule",
            description="Prep task stopped: let the watchdog check it reported",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [task.cluster.cluster_arn],
                    "lastStatus": ["STOPPED"],
                    "group": [f"family:{task.task_definition.family}"],
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function.function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )
