"""The Lambda that consumes callback messages and starts the prep work (Fargate task or Glue run)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.callback_permissions import grant_send_callbacks
from cdk_constructs.callback_queue import CallbackQueue
from cdk_constructs.callback_table import CallbackTokenTable
from cdk_constructs.checker_skips import skip_cfn_lint
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.prep_task import CONTAINER_NAME, PrepTask, TaskNetwork
from cdk_constructs.python_function import FunctionSpec, PythonFunction


class CallbackHandler(Construct):
    """Queue-triggered handler with partial batch responses (bad messages go to the DLQ, not the void)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        queue: CallbackQueue,
        glue_job_name: str,
        glue_job_arn: str,
        table: CallbackTokenTable,
        task: PrepTask | None,
        network: TaskNetwork | None,
    ) -> None:
        super().__init__(scope, construct_id)
        prep = config.data_prep
        environment = {
            "COMPLETION_MODE": prep.completion,
            "GLUE_JOB_NAME": glue_job_name,
            "PIPELINE_NAME": config.pipeline_name,
            **table.environment(prep),
        }
        if task is not None and network is not None:
            environment |= {
                "CLUSTER_ARN": task.cluster.cluster_arn,
                "TASK_DEFINITION_ARN": task.task_definition.task_definition_arn,
                "CONTAINER_NAME": CONTAINER_NAME,
                "SUBNET_IDS": ",".join(network.subnet_ids),
                "SECURITY_GROUP_IDS": network.security_group.security_group_id,
                "ASSIGN_PUBLIC_IP": "ENABLED" if network.assign_public_ip else "DISABLED",
            }
        self.function = PythonFunction(
            self,
            "Handler",
            spec=FunctionSpec(
                package="callback_handler",
                description="Starts the data-prep work for each SageMaker callback message",
                environment=environment,
                timeout_seconds=prep.handler_timeout_seconds,
                shared_packages=("pipeline_callback",),
                failed_invocations=(
                    "Invoked synchronously by the SQS event source mapping, where a Lambda dead-letter queue never "
                    "applies; messages that keep failing move to the callback queue's own dead-letter queue."
                ),
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        # One batch must fit in one invocation: the batch size is validated against the timeout
        # (app_config), and the handler does not begin a record with too little time left.
        self.function.function.add_event_source(
            event_sources.SqsEventSource(
                queue.queue,
                batch_size=prep.handler_batch_size,
                report_batch_item_failures=True,
                max_concurrency=5,
            )
        )
        for mapping in self.function.function.node.find_all():
            if isinstance(mapping, lambda_.CfnEventSourceMapping):
                skip_cfn_lint(
                    mapping,
                    "ES1001",
                    "An SQS event source mapping takes no on-failure destination; messages that keep failing move "
                    "to the callback queue's dead-letter queue through its redrive policy (maxReceiveCount).",
                )
        # The handler answers bad arguments, launch failures and stop requests with a failure callback.
        grant_send_callbacks(role, config.pipeline_name, success=False)
        table.grant_record_access(role)
        # Both modes: a stop request finds and stops the token's Glue runs (a task may have died).
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["glue:GetJobRuns", "glue:BatchStopJobRun"], resources=[glue_job_arn])
        )
        if task is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ecs:RunTask"],
                    resources=[task.task_definition.task_definition_arn],
                    conditions={"ArnEquals": {"ecs:cluster": task.cluster.cluster_arn}},
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ecs:ListTasks"],
                    resources=["*"],
                    conditions={"ArnEquals": {"ecs:cluster": task.cluster.cluster_arn}},
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ecs:StopTask"],
                    resources=[task.task_arn_pattern],
                    conditions={"ArnEquals": {"ecs:cluster": task.cluster.cluster_arn}},
                )
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "Task IDs are generated at run time; StopTask is limited to tasks of this one cluster.",
                [matching(r"^Resource::arn:.*:ecs:.*:task/.*/\*$")],
            )
            pass_roles = [task.task_role.role_arn]
            if task.task_definition.execution_role is not None:
                pass_roles.append(task.task_definition.execution_role.role_arn)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=pass_roles,
                    conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                )
            )
        else:
            # Event-driven mode: the handler starts, finds and stops Glue runs itself.
            role.add_to_principal_policy(iam.PolicyStatement(actions=["glue:StartJobRun"], resources=[glue_job_arn]))
