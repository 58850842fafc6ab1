"""The reconciler: on a schedule, ends every callback step that nothing else will end (lambda/callback_reconciler)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.callback_permissions import grant_end_glue_runs, grant_send_callbacks
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.checker_skips import skip_on_invoke_permissions
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.prep_task import PrepTask
from cdk_constructs.python_function import FunctionSpec, PythonFunction

METRICS_NAMESPACE = "TaxiAnomaly/Callbacks"
SERVICE_NAME = "callback-reconciler"


class CallbackReconciler(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        glue_job_name: str,
        glue_job_arn: str,
        table: CallbackTokenTable,
        task: PrepTask | None,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        prep = config.data_prep
        environment = {
            "GLUE_JOB_NAME": glue_job_name,
            "ALARM_AFTER_SECONDS": str(prep.callback_alarm_minutes * 60),
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **table.environment(prep),
        }
        if task is not None:
            environment["CLUSTER_ARN"] = task.cluster.cluster_arn
        self.function = PythonFunction(
            self,
            "Reconciler",
            spec=FunctionSpec(
                package="callback_reconciler",
                description="Ends callback steps whose work ended, died or passed its deadline without a callback",
                environment=environment,
                timeout_seconds=120,
                shared_packages=("pipeline_callback",),
                failed_invocations=(
                    "Invoked on a schedule; a failed pass loses nothing because the next pass, minutes later, "
                    "reads the same open records again (and the function-errors alarm fires)."
                ),
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        grant_send_callbacks(role, config.pipeline_name)
        table.grant_record_access(role)
        grant_end_glue_runs(role, glue_job_arn)
        if task is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ecs:DescribeTasks", "ecs:StopTask"],
                    resources=[task.task_arn_pattern],
                    conditions={"ArnEquals": {"ecs:cluster": task.cluster.cluster_arn}},
                )
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "Task IDs are generated at run time; DescribeTasks/StopTask are limited to tasks of this one cluster.",
                [matching(r"^Resource::arn:.*:ecs:.*:task/.*/\*$")],
            )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Reconcile callback steps with the work they started",
            schedule=events.Schedule.rate(Duration.minutes(prep.reconcile_every_minutes)),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function.function,
                dead_letter_queue=dead_letter_queue,
                retry_attempts=2,
                max_event_age=Duration.minutes(prep.reconcile_every_minutes),
            )
        )
        skip_on_invoke_permissions(
            self.rule,
            "ES1007",
            "A scheduled pass that fails for good loses nothing: the next pass, minutes later, reads the same open "
            "records again, and the function-errors alarm fires.",
        )
        # The reconciler counts the steps still waiting after callback_alarm_minutes on every run.
        self.overdue_steps = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="OverdueCallbackSteps",
            dimensions_map={"service": SERVICE_NAME},
            period=Duration.minutes(max(5, prep.reconcile_every_minutes)),
            statistic="Maximum",
        )
