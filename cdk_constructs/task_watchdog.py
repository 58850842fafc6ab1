"""When a prep task stops, the watchdog makes sure its step gets the true outcome and its Glue run stops."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.callback_permissions import grant_end_glue_runs, grant_send_callbacks
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.checker_skips import ASYNC_DESTINATION_NOT_MATCHED, skip_on_invoke_permissions
from cdk_constructs.prep_task import CONTAINER_NAME, PrepTask
from cdk_constructs.python_function import EVENTBRIDGE_FAILURES_TO_QUEUE, FunctionSpec, PythonFunction


class TaskWatchdog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        task: PrepTask,
        glue_job_name: str,
        glue_job_arn: str,
        table: CallbackTokenTable,
        dead_letter_queue: sqs.IQueue,
        failed_invocations: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self,
            "Watchdog",
            spec=FunctionSpec(
                package="task_watchdog",
                description="Gives a stopped prep task's step its true outcome and stops its Glue run",
                environment={
                    "CONTAINER_NAME": CONTAINER_NAME,
                    "GLUE_JOB_NAME": glue_job_name,
                    **table.environment(config.data_prep),
                },
                shared_packages=("pipeline_callback",),
                failed_invocations=EVENTBRIDGE_FAILURES_TO_QUEUE,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        grant_send_callbacks(role, config.pipeline_name)
        table.grant_record_access(role)
        grant_end_glue_runs(role, glue_job_arn)
        # EventBridge invokes asynchronously: after Lambda's own retries a failed event goes to this
        # queue (alarmed) instead of being discarded, and the reconciler covers the step meanwhile.
        self.function.send_failed_events_to(failed_invocations, Duration.hours(6))
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
        skip_on_invoke_permissions(self.rule, "ES1007", ASYNC_DESTINATION_NOT_MATCHED)
