"""Operator notifications: one SNS topic, alarms whose names say what broke, and a DLQ for event targets."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
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

from cdk_constructs.nag import acknowledge


class OperationsTopic(Construct):
    """The encrypted topic every alarm and failure notification of one environment goes to."""

    def __init__(
        self, scope: Construct, construct_id: str, *, alarm_email: str | None, destroy_with_stack: bool
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
        # Alarms and EventBridge publish encrypted messages to the topic.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmAndEventPublishers",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
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
        self._action = cw_actions.SnsAction(self.topic)

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
                self.topic,
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
