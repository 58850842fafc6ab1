"""Streaming metrics ETL: generator -> Kinesis -> Glue streaming job -> interval CSV -> detector -> alerts."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.anomaly_detector import AnomalyDetector
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.metrics_generator import MetricsGenerator
from cdk_constructs.operations import Alarms
from cdk_constructs.streaming_etl_job import MetricsCatalog, StreamingEtlJob


class StreamingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream,
        metrics_bucket: s3.IBucket,
        operations_topic: sns.ITopic,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarms = Alarms(self, "Alarms", topic=operations_topic, alarm_prefix=f"taxi-anomaly-{config.name}")
        self.catalog = MetricsCatalog(self, "Catalog", stream=stream, env_name=config.name)
        security = GlueSecurity(self, "GlueSecurity", destroy_with_stack=config.destroy_data_with_stack)
        self.etl_job = StreamingEtlJob(
            self,
            "EtlJob",
            config=config,
            stream=stream,
            catalog=self.catalog,
            metrics_bucket=metrics_bucket,
            security=security,
        )
        self.generator = MetricsGenerator(
            self, "Generator", config=config, stream=stream, dead_letter_queue=self.alarms.event_dead_letter_queue
        )
        self.detector = AnomalyDetector(
            self,
            "Detector",
            config=config,
            metrics_bucket=metrics_bucket,
            dead_letter_queue=self.alarms.event_dead_letter_queue,
        )
        alarms = self.alarms
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
        alarms.alarm_on_dead_letters(
            "streaming-event-target-dead-letters",
            alarms.event_dead_letter_queue,
            "EventBridge could not invoke the generator or the detector; inspect the DLQ.",
        )
        alarms.notify_on_glue_failures("streaming-job-failed", [self.etl_job.job_name])
        CfnOutput(self, "StreamingJobName", value=self.etl_job.job_name)
        CfnOutput(self, "AnomalyAlertsTopicArn", value=self.detector.alerts.topic_arn)
