"""The scheduled Lambda that writes synthetic e-commerce events to the metrics stream."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.checker_skips import skip_on_invoke_permissions
from cdk_constructs.python_function import FunctionSpec, PythonFunction


class MetricsGenerator(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        streaming = config.streaming
        self.function = PythonFunction(
            self,
            "Generator",
            spec=FunctionSpec(
                package="metrics_generator",
                failed_invocations=(
                    "Writes synthetic events on a schedule: a failed run has nothing worth replaying, and the next "
                    "run writes the next window; undeliverable schedule events go to the target's dead-letter queue."
                ),
                description="Writes synthetic e-commerce events to the metrics stream",
                environment={
                    "STREAM_NAME": stream.stream_name,
                    "RECORDS_PER_INVOCATION": str(streaming.records_per_invocation),
                    # Empty: no anomaly; else the JSON of streaming.anomaly_target (validated again at cold start).
                    "ANOMALY_TARGET": streaming.anomaly_target.as_json() if streaming.anomaly_target else "",
                    "WINDOW_MINUTES": str(streaming.generator_rate_minutes),
                },
                timeout_seconds=60,
                # One writer at a time keeps the schedule's rate the stream's rate.
                reserved_concurrency=1,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        self.function.role.add_to_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecords"], resources=[stream.stream_arn])
        )
        if stream.encryption_key is not None:
            stream.encryption_key.grant(self.function.role, "kms:GenerateDataKey")
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Generates a batch of e-commerce events",
            schedule=events.Schedule.rate(Duration.minutes(streaming.generator_rate_minutes)),
            enabled=streaming.generator_enabled,
        )
        self.rule.add_target(
            targets.LambdaFunction(self.function.function, dead_letter_queue=dead_letter_queue, retry_attempts=2)
        )
        skip_on_invoke_permissions(
            self.rule,
            "ES1007",
            "Synthetic events on a schedule: a run discarded after Lambda's retries has nothing worth replaying, "
            "and the next run writes the next window.",
        )
