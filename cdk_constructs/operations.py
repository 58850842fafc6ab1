"""Operator notifications: one SNS topic, alarms whose names say what broke, and a DLQ for event targets."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_constructs.checker_skips import skip_cfn_lint, skip_checkov
from cdk_constructs.nag import acknowledge

_SQS_MANAGED_ENCRYPTION = (
    "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); checkov's rule only recognises a "
    "KmsMasterKeyId; the queue holds only event envelopes and error records (ids, tokens, S3 URIs), no dataset."
)


_IS_A_DEAD_LETTER_QUEUE = (
    "This queue is itself where failed events end (a dead-letter queue or on-failure destination); nothing "
    "consumes it, so a redrive policy would have nothing to redrive. Its alarm tells an operator to look."
)


class OperationsTopic(Construct):
    """The encrypted topic every alarm and failure notification of one environment goes to."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_email: str | None,
        destroy_with_stack: bool,
        stack_name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the operations topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN,
            pending_window=Duration.days(7),
        )
        stack = Stack.of(self)
        # Only this account's alarms, and only this environment's EventBridge rules, may publish. Rule
        # names are generated as <stack name>-<id>-<suffix>, and every stack name starts with the prefix.
        alarm_sources = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm", resource_name="*",
                                                          arn_format=ArnFormat.COLON_RESOURCE_NAME)},
        }
        rule_sources = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="events", resource="rule",
                                                          resource_name=f"{stack_name_prefix}*")},
        }
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmPublishers",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions=alarm_sources,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventRulePublishers",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions=rule_sources,
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=alarm_sources,
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventRules",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=rule_sources,
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))


class Alarms(Construct):
    """One stack's alarms (named after what broke) and the DLQ for its EventBridge targets."""

    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic, alarm_prefix: str) -> None:
        super().__init__(scope, construct_id)
        self._prefix = alarm_prefix
        self.topic = topic
        # Where EventBridge puts events it could not deliver to our Lambda targets.
        self.event_dead_letter_queue = sqs.Queue(
            self,
            "EventTargetDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.event_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue for EventBridge targets.",
        )
        skip_checkov(self.event_dead_letter_queue, "CKV_AWS_27", _SQS_MANAGED_ENCRYPTION)
        skip_cfn_lint(self.event_dead_letter_queue, "ES6000", _IS_A_DEAD_LETTER_QUEUE)
        self._action = cw_actions.SnsAction(self.topic)
        # EventBridge targets publish through this reference: the topic's own policy (OperationsTopic)
        # grants EventBridge with source conditions, so the target must not add an unconditioned grant.
        self._topic_for_rules = sns.Topic.from_topic_arn(self, "TopicForRules", topic.topic_arn)

    def failed_invocations_queue(self, construct_id: str) -> sqs.Queue:
        """An encrypted queue for a Lambda's failed asynchronous invocations (its on-failure destination)."""
        queue = sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(queue, "AwsSolutions-SQS3", "This queue is itself the on-failure destination of Lambda functions.")
        skip_checkov(queue, "CKV_AWS_27", _SQS_MANAGED_ENCRYPTION)
        skip_cfn_lint(queue, "ES6000", _IS_A_DEAD_LETTER_QUEUE)
        return queue

    def alarm_above_zero(self, what_broke: str, metric: cloudwatch.IMetric, description: str) -> None:
        self._alarm(f"{what_broke}-alarm", what_broke, metric, description)

    def _alarm(self, construct_id: str, what_broke: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{what_broke}",
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)

    def alarm_on_dead_letters(self, what_broke: str, queue: sqs.IQueue, description: str) -> None:
        self._alarm(
            f"{what_broke}-alarm",
            what_broke,
            queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
            description,
        )

    def alarm_on_function_errors(self, what_broke: str, function: lambda_.IFunction, description: str) -> None:
        self._alarm(
            f"{what_broke}-alarm",
            what_broke,
            function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            description,
        )

    def notify_on_glue_failures(self, what_broke: str, job_names: list[str]) -> None:
        """Glue has no failed-run metric: an EventBridge rule catches failed runs, notifies, and is alarmed on."""
        rule = events.Rule(
            self,
            f"{what_broke}-rule",
            description="A Glue job of this system ended FAILED, TIMEOUT or ERROR",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": job_names, "state": ["FAILED", "TIMEOUT", "ERROR"]},
            ),
        )
        rule.add_target(
            targets.SnsTopic(
                self._topic_for_rules,
                message=events.RuleTargetInput.from_text(
                    f"Glue job {events.EventField.from_path('$.detail.jobName')} run "
                    f"{events.EventField.from_path('$.detail.jobRunId')} ended "
                    f"{events.EventField.from_path('$.detail.state')}: "
                    f"{events.EventField.from_path('$.detail.message')}"
                ),
                dead_letter_queue=self.event_dead_letter_queue,
            )
        )
        self._alarm(
            f"{what_broke}-alarm",
            what_broke,
            cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="MatchedEvents",
                dimensions_map={"RuleName": rule.rule_name},
                period=Duration.minutes(5),
                statistic="Sum",
            ),
            "A Glue run of this system failed; the topic message names the run and Glue's error.",
        )
