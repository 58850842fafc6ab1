"""The ApproveResults step's machinery: its queue + DLQ, the approvers topic, the notifier, the approval
endpoint (a Lambda function URL) and the scheduled expiry check."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from app_config import EnvironmentConfig
from approval.store import OPEN_INDEX
from cdk_constructs.callback_permissions import grant_send_callbacks
from cdk_constructs.callback_queue import CallbackQueue
from cdk_constructs.checker_skips import (
    ASYNC_DESTINATION_NOT_MATCHED,
    skip_cfn_lint,
    skip_checkov,
    skip_on_invoke_permissions,
)
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.operations import Alarms
from cdk_constructs.python_function import EVENTBRIDGE_FAILURES_TO_QUEUE, FunctionSpec, PythonFunction
from ml_pipeline.definition import ARTIFACTS_PREFIX

SHARED_PACKAGES = ("pipeline_callback", "approval")
NOTIFIER_TIMEOUT_SECONDS = 60


class ApprovalWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        table: dynamodb.ITableV2,
        artifacts_bucket: s3.IBucket,
        alarms: Alarms,
    ) -> None:
        super().__init__(scope, construct_id)
        approval = config.approval
        logs: dict[str, Any] = {
            "log_retention_days": config.log_retention_days,
            "destroy_logs_with_stack": config.destroy_data_with_stack,
        }
        table_env = {"APPROVAL_TABLE_NAME": table.table_name}
        # Same guarantees as the prep callback: encrypted, TLS-only, only our pipeline may send, DLQ.
        self.queue = CallbackQueue(
            self,
            "Queue",
            pipeline_name=config.pipeline_name,
            handler_timeout=Duration.seconds(NOTIFIER_TIMEOUT_SECONDS),
            max_receive_count=approval.dlq_max_receive_count,
            use_customer_managed_key=config.data_prep.queue_kms,
            destroy_with_stack=config.destroy_data_with_stack,
        )

        self.topic_key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the approvers topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY if config.destroy_data_with_stack else RemovalPolicy.RETAIN,
            pending_window=Duration.days(7),
        )
        self.topic = sns.Topic(self, "ApproversTopic", master_key=self.topic_key, enforce_ssl=True)
        for email in approval.approver_emails:
            # SNS e-mails the address a confirmation link first; mails arrive only once it is confirmed.
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.endpoint = PythonFunction(
            self,
            "Endpoint",
            spec=FunctionSpec(
                package="approval_endpoint",
                description="The approval page: shows a pending request, records one decision, answers the step",
                environment=table_env,
                timeout_seconds=15,
                shared_packages=SHARED_PACKAGES,
                # Caps what a flood of requests can cost or do; an approval needs one request at a time.
                reserved_concurrency=approval.endpoint_reserved_concurrency,
                failed_invocations=(
                    "Invoked synchronously through its function URL (RequestResponse), where a Lambda dead-letter "
                    "queue never applies; the browser gets the error page and nothing is decided."
                ),
            ),
            **logs,
        )
        # The reference in the link is the credential: 256 random bits, single use, expiring (approval/references).
        self.url = self.endpoint.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)
        url_resource = self.url.node.default_child
        if not isinstance(url_resource, CfnResource):
            raise TypeError("the approval endpoint's function URL has no CloudFormation resource")
        skip_cfn_lint(
            url_resource,
            "E3006",
            "cfn-lint checks every region, and AWS::Lambda::Url is missing from CloudFormation's resource "
            "specification in a few newer regions; this stack deploys to its environment's region only.",
        )
        skip_checkov(
            url_resource,
            "CKV_AWS_258",
            "The approval links are opened from an e-mail by approvers who hold no AWS credentials, so the URL "
            "cannot use IAM auth. The credential is the link's single-use 256-bit reference (only its SHA-256 is "
            "stored), it expires, unknown ones get a 404, GET changes nothing, and only a same-origin POST with "
            "the page's form token decides; reserved concurrency caps what a flood can cost.",
        )
        _grant_table(self.endpoint.role, table, ["dynamodb:GetItem", "dynamodb:UpdateItem"])
        grant_send_callbacks(self.endpoint.role, config.pipeline_name)

        self.notifier = PythonFunction(
            self,
            "Notifier",
            spec=FunctionSpec(
                package="approval_notifier",
                description="Mails the approvers a pending ApproveResults step with its evaluation report",
                environment={
                    **table_env,
                    "APPROVERS_TOPIC_ARN": self.topic.topic_arn,
                    "APPROVAL_ENDPOINT_URL": self.url.url,
                    "APPROVAL_EXPIRES_HOURS": str(approval.expires_hours),
                    # The last delivery gives up with a reason instead of leaving the step to the DLQ.
                    "APPROVAL_MAX_RECEIVE_COUNT": str(approval.dlq_max_receive_count),
                    "ENVIRONMENT_NAME": config.name,
                },
                timeout_seconds=NOTIFIER_TIMEOUT_SECONDS,
                shared_packages=SHARED_PACKAGES,
                failed_invocations=(
                    "Invoked synchronously by the SQS event source mapping, where a Lambda dead-letter queue never "
                    "applies; messages that keep failing move to the approval queue's own dead-letter queue."
                ),
            ),
            **logs,
        )
        self.notifier.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue.queue, batch_size=5, report_batch_item_failures=True, max_concurrency=2
            )
        )
        for mapping in self.notifier.function.node.find_all():
            if isinstance(mapping, lambda_.CfnEventSourceMapping):
                skip_cfn_lint(
                    mapping,
                    "ES1001",
                    "An SQS event source mapping takes no on-failure destination; messages that keep failing move "
                    "to the approval queue's dead-letter queue through its redrive policy (maxReceiveCount).",
                )
        _grant_table(
            self.notifier.role,
            table,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
        )
        # It reads one thing there: the evaluation reports (pipeline-executions/<execution>/evaluation/...).
        self.notifier.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[artifacts_bucket.arn_for_objects(f"{ARTIFACTS_PREFIX}*/evaluation/evaluation.json")],
            )
        )
        self.notifier.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.topic_key.grant(self.notifier.role, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge(
            self.notifier.role,
            "AwsSolutions-IAM5",
            "The execution id in an evaluation report's key is generated per run: reads are limited to the "
            "evaluation/evaluation.json objects under the artifacts bucket's pipeline-executions/ prefix.",
            [matching(rf"^Resource::.*/{ARTIFACTS_PREFIX}\*/evaluation/evaluation\.json$")],
        )
        # The notifier only ever fails a step (bad arguments, unusable report, stop); approving is the page's job.
        grant_send_callbacks(self.notifier.role, config.pipeline_name, success=False)

        self.expiry = PythonFunction(
            self,
            "ExpiryCheck",
            spec=FunctionSpec(
                package="approval_expiry",
                description="Fails ApproveResults steps whose approval expired; redelivers unreported decisions",
                environment=table_env,
                timeout_seconds=120,
                shared_packages=SHARED_PACKAGES,
                reserved_concurrency=1,
                failed_invocations=EVENTBRIDGE_FAILURES_TO_QUEUE,
            ),
            **logs,
        )
        _grant_table(self.expiry.role, table, ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"])
        grant_send_callbacks(self.expiry.role, config.pipeline_name)
        # EventBridge invokes asynchronously: after Lambda's own retries a failed check goes to this alarmed
        # queue with its error instead of being discarded; the next check, minutes later, sees the same requests.
        self.expiry_failures = alarms.failed_invocations_queue("ExpiryCheckFailures")
        alarms.alarm_on_dead_letters(
            "approval-expiry-event-failed",
            self.expiry_failures,
            "The approval expiry check failed on a scheduled event after its retries; inspect the queue for the cause.",
        )
        self.expiry.send_failed_events_to(self.expiry_failures, Duration.minutes(approval.expiry_check_minutes))
        rule = events.Rule(
            self,
            "ExpirySchedule",
            description="Expire overdue approval requests and redeliver unreported decisions",
            schedule=events.Schedule.rate(Duration.minutes(approval.expiry_check_minutes)),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.expiry.function,
                dead_letter_queue=alarms.event_dead_letter_queue,
                retry_attempts=2,
                max_event_age=Duration.minutes(approval.expiry_check_minutes),
            )
        )
        skip_on_invoke_permissions(rule, "ES1007", ASYNC_DESTINATION_NOT_MATCHED)

        alarms.alarm_on_dead_letters(
            "approval-dead-letters",
            self.queue.dead_letter_queue,
            "ApproveResults messages could not be processed, not even to fail their step on the last delivery; "
            "those steps may wait until SageMaker's callback timeout. Inspect the DLQ.",
        )
        for what_broke, function, description in (
            ("approval-notifier-errors", self.notifier, "The approval notifier Lambda failed."),
            ("approval-endpoint-errors", self.endpoint, "The approval endpoint Lambda failed."),
            ("approval-expiry-errors", self.expiry, "The approval expiry check failed; open requests may linger."),
        ):
            alarms.alarm_on_function_errors(what_broke, function.function, description)
        stack = Stack.of(self)
        CfnOutput(stack, "ApprovalEndpointUrl", value=self.url.url)
        CfnOutput(stack, "ApproversTopicArn", value=self.topic.topic_arn)
        CfnOutput(stack, "ApprovalDeadLetterQueueUrl", value=self.queue.dead_letter_queue.queue_url)


def _grant_table(role: iam.IRole, table: dynamodb.ITableV2, actions: list[str]) -> None:
    """Item-level access to the approval table (and, for Query, its open-requests index) only."""
    resources = [table.table_arn]
    if "dynamodb:Query" in actions:
        resources.append(f"{table.table_arn}/index/{OPEN_INDEX}")
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
