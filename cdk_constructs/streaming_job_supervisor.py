"""The streaming job's supervisor: a small Lambda on a schedule and on the job's state changes, with its alarms.

It keeps one run going while the run policy wants one (restarting failed or ended runs within a failure budget),
stops the job outside the policy, and publishes what it saw. Alarms: the job stayed down, a run ended (anything but
a stop), the supervisor gave up, the supervisor failed, and intervals came out empty while the job should run.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.checker_skips import ASYNC_DESTINATION_NOT_MATCHED, skip_on_invoke_permissions
from cdk_constructs.nag import acknowledge
from cdk_constructs.operations import Alarms
from cdk_constructs.python_function import EVENTBRIDGE_FAILURES_TO_QUEUE, FunctionSpec, PythonFunction
from cdk_constructs.streaming_etl_job import StreamingEtlJob

SUPERVISOR_NAMESPACE = "TaxiAnomaly/StreamingSupervisor"
# Glue's JobRunState values that end a run (botocore's Glue model).
TERMINAL_RUN_STATES = ["SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"]
# How long a stopped run's successor gets before the supervisor starts one itself (a deploy or Glue's
# maintenance restart is usually that quick).
RESTART_GRACE_MINUTES = 3
# Periods in a row the job may be down before the alarm: one restart attempt, plus one more check.
DOWN_PERIODS_TO_ALARM = 3


class StreamingJobSupervisor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        job: StreamingEtlJob,
        generator_rule: events.IRule | None,
        alarms: Alarms,
        dead_letter_queue: sqs.IQueue,
        detector_namespace: str,
    ) -> None:
        super().__init__(scope, construct_id)
        streaming = config.streaming
        policy = job.run_policy
        self._alarm_prefix = f"taxi-anomaly-{config.name}"
        self._topic = alarms.topic
        self.function = PythonFunction(
            self,
            "Supervisor",
            spec=FunctionSpec(
                package="streaming_job_control",
                handler="supervisor_handler.lambda_handler",
                description="Keeps the streaming ETL job running while its run policy wants it, within a budget",
                environment={
                    "JOB_NAME": job.job_name,
                    "RUN_MODE": policy.mode,
                    "GENERATOR_RULE_NAME": policy.generator_rule_name,
                    "ACTIVE_HOURS_UTC": policy.active_hours_utc,
                    "GLUE_MAX_RETRIES": str(streaming.job_max_retries),
                    "FAILURE_LIMIT": str(streaming.job_failure_limit),
                    "FAILURE_WINDOW_HOURS": str(streaming.job_failure_window_hours),
                    "RESTART_GRACE_MINUTES": str(RESTART_GRACE_MINUTES),
                    "METRIC_NAMESPACE": SUPERVISOR_NAMESPACE,
                },
                timeout_seconds=60,
                # One look-and-act at a time; Glue's MaxConcurrentRuns of 1 backs this up.
                reserved_concurrency=1,
                failed_invocations=EVENTBRIDGE_FAILURES_TO_QUEUE,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=config.destroy_data_with_stack,
        )
        role = self.function.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetJobRuns", "glue:StartJobRun", "glue:BatchStopJobRun"], resources=[job.job_arn]
            )
        )
        if generator_rule is not None:
            role.add_to_policy(
                iam.PolicyStatement(actions=["events:DescribeRule"], resources=[generator_rule.rule_arn])
            )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": SUPERVISOR_NAMESPACE}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "PutMetricData accepts no resource ARN (IAM service reference); it is limited to the supervisor's "
            "namespace by the cloudwatch:namespace condition.",
            ["Resource::*"],
        )

        # EventBridge invokes asynchronously: after Lambda's own retries a failed event goes to this alarmed
        # queue instead of being discarded; the next scheduled check looks at the job again anyway.
        failed_invocations = alarms.failed_invocations_queue("SupervisorFailures")
        alarms.alarm_on_dead_letters(
            "streaming-supervisor-event-failed",
            failed_invocations,
            "The streaming job's supervisor failed on an event after its retries; inspect the queue for the cause.",
        )
        self.function.send_failed_events_to(failed_invocations, Duration.hours(1))

        interval = Duration.minutes(streaming.supervisor_interval_minutes)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Checks the streaming ETL job against its run policy",
            schedule=events.Schedule.rate(interval),
        )
        # Glue sends "Glue Job State Change" events for job runs; EventBridge delivers them on a best-effort
        # basis, which is why the schedule above exists as well.
        self.state_changes = events.Rule(
            self,
            "RunEnded",
            description="A run of the streaming ETL job ended",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [job.job_name], "state": TERMINAL_RUN_STATES},
            ),
        )
        for rule in (self.schedule, self.state_changes):
            rule.add_target(
                targets.LambdaFunction(self.function.function, dead_letter_queue=dead_letter_queue, retry_attempts=2)
            )
            # Deleted before the custom resource that stops the job on destroy, so nothing restarts it then.
            rule.node.add_dependency(job.running_job)
            skip_on_invoke_permissions(rule, "ES1007", ASYNC_DESTINATION_NOT_MATCHED)

        self._alarms(config, alarms, job, interval, detector_namespace)

    def _alarm_when_positive(
        self,
        what_broke: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> cloudwatch.Alarm:
        """An alarm named after what broke, to the operations topic, like the stack's other alarms."""
        alarm = cloudwatch.Alarm(
            self,
            f"{what_broke}-alarm",
            alarm_name=f"{self._alarm_prefix}-{what_broke}",
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self._topic))
        return alarm

    def metric(
        self, name: str, job: StreamingEtlJob, period: Duration, statistic: str = "Maximum"
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SUPERVISOR_NAMESPACE,
            metric_name=name,
            dimensions_map={"JobName": job.job_name},
            period=period,
            statistic=statistic,
        )

    def _alarms(
        self,
        config: EnvironmentConfig,
        alarms: Alarms,
        job: StreamingEtlJob,
        interval: Duration,
        detector_namespace: str,
    ) -> None:
        self._alarm_when_positive(
            "streaming-job-not-running",
            self.metric("JobDown", job, interval),
            f"The streaming ETL job should be running but has had no active run for {DOWN_PERIODS_TO_ALARM} "
            "supervisor checks in a row; see the supervisor's log for why it did not (re)start.",
            evaluation_periods=DOWN_PERIODS_TO_ALARM,
        )
        self._alarm_when_positive(
            "streaming-job-run-ended",
            self.metric("UnexpectedRunEnd", job, interval, "Sum"),
            "A streaming ETL run ended (failed, timed out, expired or finished) while it should have been running; "
            "the supervisor restarts it within its failure budget.",
        )
        self._alarm_when_positive(
            "streaming-job-supervisor-gave-up",
            self.metric("GaveUp", job, interval),
            f"{config.streaming.job_failure_limit} streaming ETL runs failed within "
            f"{config.streaming.job_failure_window_hours} h; the supervisor stopped restarting the job. Fix the "
            "cause (the job's error log), then start a run (or wait until the failures age out of the window).",
        )
        alarms.alarm_on_function_errors(
            "streaming-job-supervisor-errors",
            self.function.function,
            "The streaming job's supervisor failed; the job is not being watched.",
        )
        # An interval without any data while the job should be running: the stream, the job or the producer broke.
        frequency = Duration.minutes(config.streaming.frequency_minutes)
        empty = cloudwatch.MathExpression(
            expression="IF(empty > 0 AND desired > 0, 1, 0)",
            using_metrics={
                "empty": cloudwatch.Metric(
                    namespace=detector_namespace, metric_name="EmptyInterval", period=frequency, statistic="Maximum"
                ),
                "desired": self.metric("JobDesired", job, frequency),
            },
            period=frequency,
            label="Empty intervals while the job should run",
        )
        # The detector publishes each interval's figure a few minutes after it ends (timestamped at its start),
        # so the newest period is usually still empty: two of the last three intervals decide.
        self._alarm_when_positive(
            "streaming-empty-intervals",
            empty,
            "Two recent intervals had no data at all while the streaming job should have been running: check the "
            "producer (generator or your stream), the job's error log and the supervisor.",
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
