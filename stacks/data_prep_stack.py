"""The data-prep half of the ML pipeline: callback queue -> handler -> (Fargate task ->) Glue job."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.callback_handler import CallbackHandler
from cdk_constructs.callback_queue import CallbackQueue
from cdk_constructs.callback_reconciler import CallbackReconciler
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.glue_completion import GlueCompletion
from cdk_constructs.glue_prep_job import GluePrepJob
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.operations import Alarms
from cdk_constructs.prep_task import PrepTask, TaskNetwork
from cdk_constructs.task_watchdog import TaskWatchdog


class DataPrepStack(Stack):
    @property
    def availability_zones(self) -> list[str]:
        """The VPC's zones without a context lookup, so synth needs no credentials even with an account set.

        CDK's default looks the zones up in the account when the stack has one (and stores them in the
        git-ignored cdk.context.json); these come from config, or from Fn::GetAZs at deploy time.
        """
        configured = self._availability_zones_from_config
        return list(configured) if configured else [Fn.select(index, Fn.get_azs()) for index in range(2)]

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        raw_bucket: s3.IBucket,
        prepared_bucket: s3.IBucket,
        operations_topic: sns.ITopic,
        callback_table: CallbackTokenTable,
        **kwargs: Any,
    ) -> None:
        # Read by the availability_zones property, which the VPC asks for during this constructor.
        self._availability_zones_from_config = config.data_prep.availability_zones
        super().__init__(scope, construct_id, **kwargs)
        prep = config.data_prep
        self.alarms = Alarms(self, "Alarms", topic=operations_topic, alarm_prefix=f"taxi-anomaly-{config.name}")
        self.callback_queue = CallbackQueue(
            self,
            "CallbackQueue",
            pipeline_name=config.pipeline_name,
            handler_timeout=Duration.seconds(prep.handler_timeout_seconds),
            max_receive_count=prep.dlq_max_receive_count,
            use_customer_managed_key=prep.queue_kms,
            destroy_with_stack=config.destroy_data_with_stack,
        )
        self.glue_security = GlueSecurity(self, "GlueSecurity", destroy_with_stack=config.destroy_data_with_stack)
        self.prep_job = GluePrepJob(
            self,
            "PrepJob",
            config=prep,
            raw_bucket=raw_bucket,
            prepared_bucket=prepared_bucket,
            security=self.glue_security,
        )

        task: PrepTask | None = None
        network: TaskNetwork | None = None
        if prep.completion == "poll":
            network = TaskNetwork(self, "TaskNetwork", config=prep, log_retention=config.log_retention_days)
            task = PrepTask(
                self,
                "PrepTask",
                config=prep,
                glue_job_arn=self.prep_job.job_arn,
                pipeline_name=config.pipeline_name,
                table=callback_table,
                network=network,
                log_retention=config.log_retention_days,
                destroy_logs_with_stack=config.destroy_data_with_stack,
            )
        self.handler = CallbackHandler(
            self,
            "CallbackHandler",
            config=config,
            queue=self.callback_queue,
            glue_job_name=self.prep_job.job_name,
            glue_job_arn=self.prep_job.job_arn,
            table=callback_table,
            task=task,
            network=network,
        )
        ops = self.alarms
        ops.alarm_on_dead_letters(
            "callback-dead-letters",
            self.callback_queue.dead_letter_queue,
            "Callback messages could not be processed (bad body or handler crash); inspect the DLQ.",
        )
        ops.alarm_on_dead_letters(
            "event-target-dead-letters",
            ops.event_dead_letter_queue,
            "EventBridge could not deliver a task or Glue event to its Lambda; inspect the DLQ.",
        )
        ops.alarm_on_function_errors(
            "callback-handler-errors", self.handler.function.function, "The callback handler Lambda failed."
        )
        ops.notify_on_glue_failures("prep-glue-job-failed", [self.prep_job.job_name])
        # Where the watchdog's and the completion Lambda's failed asynchronous invocations go.
        failed_invocations = ops.failed_invocations_queue("CallbackEventFailures")
        ops.alarm_on_dead_letters(
            "callback-event-handling-failed",
            failed_invocations,
            "The task watchdog or Glue completion Lambda failed on an event after its retries; the reconciler "
            "ends the step, inspect the queue for the cause.",
        )
        if task is not None:
            watchdog = TaskWatchdog(
                self,
                "TaskWatchdog",
                config=config,
                task=task,
                glue_job_name=self.prep_job.job_name,
                glue_job_arn=self.prep_job.job_arn,
                table=callback_table,
                dead_letter_queue=ops.event_dead_letter_queue,
                failed_invocations=failed_invocations,
            )
            ops.alarm_on_function_errors(
                "task-watchdog-errors", watchdog.function.function, "The prep-task watchdog Lambda failed."
            )
        else:
            completion = GlueCompletion(
                self,
                "GlueCompletion",
                config=config,
                glue_job_name=self.prep_job.job_name,
                glue_job_arn=self.prep_job.job_arn,
                table=callback_table,
                dead_letter_queue=ops.event_dead_letter_queue,
                failed_invocations=failed_invocations,
            )
            ops.alarm_on_function_errors(
                "glue-completion-errors", completion.function.function, "The Glue completion Lambda failed."
            )

        self.reconciler = CallbackReconciler(
            self,
            "Reconciler",
            config=config,
            glue_job_name=self.prep_job.job_name,
            glue_job_arn=self.prep_job.job_arn,
            table=callback_table,
            task=task,
            dead_letter_queue=ops.event_dead_letter_queue,
        )
        ops.alarm_on_function_errors(
            "callback-reconciler-errors", self.reconciler.function.function, "The callback reconciler failed."
        )
        ops.alarm_above_zero(
            "callback-step-waiting-too-long",
            self.reconciler.overdue_steps,
            f"A callback step has waited more than {prep.callback_alarm_minutes} minutes for its outcome; the "
            f"reconciler fails it at {prep.callback_deadline_minutes} minutes. Check the prep task or Glue run.",
        )

        CfnOutput(self, "CallbackQueueUrl", value=self.callback_queue.queue.queue_url)
        CfnOutput(self, "CallbackDeadLetterQueueUrl", value=self.callback_queue.dead_letter_queue.queue_url)
        CfnOutput(self, "PrepGlueJobName", value=self.prep_job.job_name)
