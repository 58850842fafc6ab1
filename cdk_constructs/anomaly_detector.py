"""The detector that judges each closed interval per dimension value (one learnt model each) and raises alerts.

It replaces Amazon Lookout for Metrics (ended 9 October 2025) from the same interval CSV files.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.checker_skips import skip_on_invoke_permissions
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.python_function import FunctionSpec, PythonFunction
from cdk_constructs.s3_grants import grant_prefix_read, grant_prefix_write
from cdk_constructs.streaming_etl_job import INTERVALS_PREFIX

ANOMALIES_PREFIX = "metrics/anomalies/"
STATE_PREFIX = "metrics/detector-state/"
STATE_KEY = f"{STATE_PREFIX}history.json"
# Feedback labels (`python -m streaming_cli feedback`), one object per group id; the detector only reads them.
FEEDBACK_PREFIX = "metrics/feedback/"
# One compact totals.json per interval read, so a history rebuild reads one object per interval (issue 12).
AGGREGATES_PREFIX = "metrics/detector-aggregates/"
METRIC_NAMESPACE = "TaxiAnomaly/MetricsDetector"


class AnomalyDetector(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        metrics_bucket: s3.IBucket,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        streaming = config.streaming
        self.alerts_key = kms.Key(
            self,
            "AlertsKey",
            description="Encrypts the metrics anomaly alerts topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY if config.destroy_data_with_stack else RemovalPolicy.RETAIN,
            pending_window=Duration.days(7),
        )
        self.alerts = sns.Topic(self, "Alerts", master_key=self.alerts_key, enforce_ssl=True)
        self.function = PythonFunction(
            self,
            "Detector",
            spec=FunctionSpec(
                package="anomaly_detector",
                failed_invocations=(
                    "Invoked on a schedule; Lambda retries a failed run, and the next run catches up every interval "
                    "it missed (anomaly_detector.logic), so a discarded invocation loses no interval."
                ),
                description="Scores each measure per combination and roll-up; groups anomalies, alerts",
                environment={
                    "DATA_BUCKET": metrics_bucket.bucket_name,
                    "INTERVALS_PREFIX": INTERVALS_PREFIX,
                    "ANOMALIES_PREFIX": ANOMALIES_PREFIX,
                    "STATE_KEY": STATE_KEY,
                    "AGGREGATES_PREFIX": AGGREGATES_PREFIX,
                    "TOPIC_ARN": self.alerts.topic_arn,
                    "METRIC_NAMESPACE": METRIC_NAMESPACE,
                    # The metric set (anomaly_detector.metric_set): every measure by every combination and roll-up.
                    "DIMENSIONS": ",".join(streaming.dimensions),
                    "MEASURES": ",".join(f"{m.name}:{m.aggregation}" for m in streaming.measures),
                    "TIMESTAMP_COLUMN": streaming.timestamp_column,
                    "FREQUENCY_MINUTES": str(streaming.frequency_minutes),
                    "ANOMALY_THRESHOLD": str(streaming.anomaly_threshold),
                    "HISTORY_LENGTH": str(streaming.history_length),
                    "ALERT_MIN_SEVERITY": str(streaming.alert_min_severity),
                    "FEEDBACK_PREFIX": FEEDBACK_PREFIX,
                    **({"ALERT_LAMBDA_ARN": streaming.alert_lambda_arn} if streaming.alert_lambda_arn else {}),
                },
                timeout_seconds=streaming.detector_timeout_seconds,
                memory_size=streaming.detector_memory_mb,
                # Runs are ordered by interval; two at once would race on the history state.
                reserved_concurrency=1,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        grant_prefix_read(role, metrics_bucket, INTERVALS_PREFIX)
        grant_prefix_write(role, metrics_bucket, ANOMALIES_PREFIX)
        grant_prefix_write(role, metrics_bucket, STATE_PREFIX)
        grant_prefix_read(role, metrics_bucket, FEEDBACK_PREFIX)
        grant_prefix_write(role, metrics_bucket, AGGREGATES_PREFIX)
        self.alerts.grant_publish(role)
        if streaming.alert_lambda_arn:
            # Lambda's permissions reference: "Actions that operate on a function can be restricted to a specific
            # function by function, version, or alias ARN" (arn:aws:lambda:<region>:<account>:function:<name>).
            role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[streaming.alert_lambda_arn])
            )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The detector reads interval files and feedback labels and writes anomaly records, per-interval "
            "aggregates and its history under fixed prefixes of the metrics bucket (object names are per interval); "
            "PutMetricData has no resource ARN and is limited to the detector's namespace by condition.",
            [
                matching(
                    rf"^Resource::.*/({INTERVALS_PREFIX}|{ANOMALIES_PREFIX}|{STATE_PREFIX}|{FEEDBACK_PREFIX}"
                    rf"|{AGGREGATES_PREFIX})\*$"
                ),
                matching(r"^Action::kms:.*\*$"),
            ],
        )
        # Once per interval, offset so the streaming job has written the interval's files.
        frequency = streaming.frequency_minutes
        offset = streaming.detector_offset_minutes
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Scores each closed {frequency}-minute interval {offset} minutes after it ends",
            schedule=events.Schedule.cron(minute=f"{offset}/{frequency}"),
        )
        self.rule.add_target(
            targets.LambdaFunction(self.function.function, dead_letter_queue=dead_letter_queue, retry_attempts=2)
        )
        skip_on_invoke_permissions(
            self.rule,
            "ES1007",
            "Lambda retries a failed run, and the next run catches up every interval it missed "
            "(anomaly_detector.logic), so an invocation discarded after its retries loses no interval.",
        )
        self.metric_namespace = METRIC_NAMESPACE
