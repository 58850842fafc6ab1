"""Streaming metrics ETL: generator (or your stream) -> Kinesis -> Glue streaming job -> interval CSV -> detector."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.anomaly_detector import AnomalyDetector
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.metrics_generator import MetricsGenerator
from cdk_constructs.metrics_stream import existing_stream
from cdk_constructs.operations import Alarms
from cdk_constructs.streaming_dashboard import StreamingDashboard
from cdk_constructs.streaming_etl_job import StreamingEtlJob
from cdk_constructs.streaming_job_supervisor import StreamingJobSupervisor


class StreamingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream | None,
        metrics_bucket: s3.IBucket,
        operations_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        """``stream`` is the storage stack's stream, or None to read ``streaming.source_stream_arn``."""
        super().__init__(scope, construct_id, **kwargs)
        self.alarms = Alarms(self, "Alarms", topic=operations_topic, alarm_prefix=f"taxi-anomaly-{config.name}")
        self.stream = stream if stream is not None else existing_stream(self, "SourceStream", config.streaming)
        security = GlueSecurity(self, "GlueSecurity", destroy_with_stack=config.destroy_data_with_stack)
        alarms = self.alarms
        # With your own stream there is no generator: it would write synthetic events into your data.
        self.generator = (
            MetricsGenerator(
                self, "Generator", config=config, stream=self.stream, dead_letter_queue=alarms.event_dead_letter_queue
            )
            if config.streaming.source_stream_arn is None
            else None
        )
        generator_rule = self.generator.rule if self.generator is not None else None
        self.etl_job = StreamingEtlJob(
            self,
            "EtlJob",
            config=config,
            stream=self.stream,
            metrics_bucket=metrics_bucket,
            security=security,
            generator_rule=generator_rule,
        )
        self.detector = AnomalyDetector(
            self,
            "Detector",
            config=config,
            metrics_bucket=metrics_bucket,
            dead_letter_queue=alarms.event_dead_letter_queue,
        )
        self.supervisor = StreamingJobSupervisor(
            self,
            "Supervisor",
            config=config,
            job=self.etl_job,
            generator_rule=generator_rule,
            alarms=alarms,
            dead_letter_queue=alarms.event_dead_letter_queue,
            detector_namespace=self.detector.metric_namespace,
        )
        if self.generator is not None:
            alarms.alarm_on_function_errors(
                "metrics-generator-errors",
                self.generator.function.function,
                "The metrics generator failed to write events.",
            )
        alarms.alarm_on_function_errors(
            "anomaly-detector-errors",
            self.detector.function.function,
            "The anomaly detector failed to score an interval.",
        )
        if self.detector.fanout is not None:
            alarms.alarm_above_zero(
                "anomaly-detector-fanout-failed",
                self.detector.fanout.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                "A detector fan-out execution failed, timed out or was aborted (its partitions or final step); "
                "see the state machine's execution history and log group.",
            )
        alarms.alarm_on_dead_letters(
            "streaming-event-target-dead-letters",
            alarms.event_dead_letter_queue,
            "EventBridge could not invoke the generator, the detector or the job's supervisor; inspect the DLQ.",
        )
        alarms.notify_on_glue_failures("streaming-job-failed", [self.etl_job.job_name])
        # Last, so it shows every alarm the stack defines.
        self.dashboard = StreamingDashboard(
            self,
            "Dashboard",
            config=config,
            detector_function=self.detector.function.function,
            detector_namespace=self.detector.metric_namespace,
            job=self.etl_job,
            supervisor=self.supervisor,
            alarms=[node for node in self.node.find_all() if isinstance(node, cloudwatch.Alarm)],
        )
        CfnOutput(self, "StreamingJobName", value=self.etl_job.job_name)
        CfnOutput(self, "SourceStreamArn", value=self.stream.stream_arn)
        CfnOutput(self, "AnomalyAlertsTopicArn", value=self.detector.alerts.topic_arn)
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard.dashboard_name)
