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
from cdk_constructs.detector_fanout import DetectorFanout
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.python_function import FunctionSpec, PythonFunction, retention_days
from cdk_constructs.s3_grants import grant_prefix_read, grant_prefix_write
from cdk_constructs.streaming_etl_job import INTERVALS_PREFIX

ANOMALIES_PREFIX = "metrics/anomalies/"
STATE_PREFIX = "metrics/detector-state/"
STATE_KEY = f"{STATE_PREFIX}history.json"
# Feedback labels (`python -m streaming_cli feedback`), one object per group id; the detector only reads them.
FEEDBACK_PREFIX = "metrics/feedback/"
# The fan-out's per-partition verdict files, one folder per interval (streaming.detector_partitions > 1).
SCORES_PREFIX = "metrics/detector-scores/"
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
        partitions = streaming.detector_partitions
        # P > 1: this function is the fan-out's group former (anomaly_detector.fanout_handler), still one at a time.
        fanout_environment = {"PARTITIONS": str(partitions), "SCORES_PREFIX": SCORES_PREFIX} if partitions > 1 else {}
        self._environment: dict[str, str] = {
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
            **fanout_environment,
        }
        self.function = PythonFunction(
            self,
            "Detector",
            spec=FunctionSpec(
                package="anomaly_detector",
                handler="fanout_handler.lambda_handler" if partitions > 1 else "handler.lambda_handler",
                failed_invocations=(
                    "Invoked on a schedule; Lambda retries a failed run, and the next run catches up every interval "
                    "it missed (anomaly_detector.logic), so a discarded invocation loses no interval."
                ),
                description="Scores each measure per combination and roll-up; groups anomalies, alerts",
                environment=self._environment,
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
        if partitions > 1:
            grant_prefix_read(role, metrics_bucket, SCORES_PREFIX)
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
                    rf"|{AGGREGATES_PREFIX}|{SCORES_PREFIX})\*$"
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
        self.fanout: DetectorFanout | None = None
        if partitions > 1:
            self.fanout = self._fan_out(config, metrics_bucket, fanout_environment)
            # CDK's SfnStateMachine target gives the rule a role allowed states:StartExecution on this machine only.
            # EventBridge (Step Functions state machine targets): a rule target starts a Standard workflow with
            # StartExecution, the event as the execution's input (CDK's default input: "the entire EventBridge event").
            self.rule.add_target(
                targets.SfnStateMachine(
                    self.fanout.state_machine, dead_letter_queue=dead_letter_queue, retry_attempts=2
                )
            )
            self.metric_namespace = METRIC_NAMESPACE
            return
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

    def _fan_out(
        self, config: EnvironmentConfig, metrics_bucket: s3.IBucket, fanout_environment: dict[str, str]
    ) -> DetectorFanout:
        """The partition scorer (no reserved concurrency: P run at once) and the state machine around both functions."""
        streaming = config.streaming
        scorer = PythonFunction(
            self,
            "PartitionScorer",
            spec=FunctionSpec(
                package="anomaly_detector",
                handler="fanout_handler.lambda_handler",
                failed_invocations=(
                    "Invoked synchronously by the fan-out state machine, which retries Lambda service errors and "
                    "fails the execution (alarmed on) otherwise; the next execution catches up the interval."
                ),
                description="Scores one hash partition of the detector's series for one interval",
                environment=self._environment,
                timeout_seconds=streaming.detector_timeout_seconds,
                memory_size=streaming.detector_memory_mb,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = scorer.role
        grant_prefix_read(role, metrics_bucket, INTERVALS_PREFIX)
        grant_prefix_write(role, metrics_bucket, AGGREGATES_PREFIX)
        grant_prefix_write(role, metrics_bucket, STATE_PREFIX)
        grant_prefix_write(role, metrics_bucket, SCORES_PREFIX)
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "A partition run reads interval files and writes per-interval aggregates, its own state and its verdict "
            "files under fixed prefixes of the metrics bucket (object names are per interval and partition).",
            [
                matching(rf"^Resource::.*/({INTERVALS_PREFIX}|{STATE_PREFIX}|{AGGREGATES_PREFIX}|{SCORES_PREFIX})\*$"),
                matching(r"^Action::kms:.*\*$"),
            ],
        )
        # An execution: 3 invocations in a row at most (resolve, one Map round, form), each within the timeout,
        # plus retries; a stuck one ends instead of holding the group former.
        return DetectorFanout(
            self,
            "Fanout",
            partitions=streaming.detector_partitions,
            partition_scorer=scorer.function,
            group_former=self.function.function,
            timeout=Duration.seconds(4 * streaming.detector_timeout_seconds + 300),
            log_retention=retention_days(config.log_retention_days),
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
