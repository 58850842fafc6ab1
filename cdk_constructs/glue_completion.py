"""Event-driven completion: a Glue state change resumes the pipeline within seconds, no compute waits."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.callback_permissions import grant_send_callbacks
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.checker_skips import ASYNC_DESTINATION_NOT_MATCHED, skip_on_invoke_permissions
from cdk_constructs.python_function import EVENTBRIDGE_FAILURES_TO_QUEUE, FunctionSpec, PythonFunction
from pipeline_callback.glue import TERMINAL_STATES

TERMINAL_GLUE_STATES = sorted(TERMINAL_STATES)


class GlueCompletion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        glue_job_name: str,
        glue_job_arn: str,
        table: CallbackTokenTable,
        dead_letter_queue: sqs.IQueue,
        failed_invocations: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self,
            "Completion",
            spec=FunctionSpec(
                package="glue_completion",
                description="Reports a finished Glue prep run to its SageMaker callback step",
                environment={"GLUE_JOB_NAME": glue_job_name, **table.environment(config.data_prep)},
                shared_packages=("pipeline_callback",),
                failed_invocations=EVENTBRIDGE_FAILURES_TO_QUEUE,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        role.add_to_principal_policy(iam.PolicyStatement(actions=["glue:GetJobRun"], resources=[glue_job_arn]))
        grant_send_callbacks(role, config.pipeline_name)
        table.grant_record_access(role)
        # After Lambda's retries a failed event lands in this (alarmed) queue, not in the void.
        self.function.send_failed_events_to(failed_invocations, Duration.hours(6))
        self.rule = events.Rule(
            self,
            "GlueRunEndedRule",
            description="Prep Glue run ended: report it to the pipeline",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [glue_job_name], "state": TERMINAL_GLUE_STATES},
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
