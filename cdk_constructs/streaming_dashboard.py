"""The streaming system's CloudWatch dashboard: each measure's totals, the anomaly groups, the detector's health,
the streaming job's health, and the stack's alarms.

Everything it shows comes from the constructs that publish it (the detector's function and namespace, the
supervisor's metrics, the job's name, the alarms): no lookups. The metric names are the detector's contract
(I14_CONTRACT.md, "CloudWatch metrics"): per interval, timestamped at the interval's start.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.streaming_etl_job import StreamingEtlJob
from cdk_constructs.streaming_job_supervisor import StreamingJobSupervisor

# The dashboard grid is 24 units wide.
FULL, HALF, THIRD = 24, 12, 8
GRAPH_HEIGHT = 6
# The ETL job sets the Kinesis source's emitConsumerLagMetrics (glue_scripts/streaming_etl.py): Glue's docs,
# "it will emit the metrics for the duration between the oldest record received by the stream and the time it
# arrives in Glue to CloudWatch. The metric's name is "glue.driver.streaming.maxConsumerLagInMs"." The docs
# quoted give the name, not the dimensions, so the widget searches the Glue namespace by name and job name.
GLUE_CONSUMER_LAG_METRIC = "glue.driver.streaming.maxConsumerLagInMs"
DETECTOR_HEALTH_METRICS = ("SeriesScored", "SeriesWarmingUp", "EmptyInterval", "SkippedRows", "AlertsSent")
GROUP_METRICS = ("AnomalyGroups", "NewAnomalyGroups", "MaxGroupSeverity")


class StreamingDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        detector_function: lambda_.IFunction,
        detector_namespace: str,
        job: StreamingEtlJob,
        supervisor: StreamingJobSupervisor,
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self._namespace = detector_namespace
        self._interval = Duration.minutes(config.streaming.frequency_minutes)
        measures = config.streaming.measures
        # AWS::CloudWatch::Dashboard: "DashboardName ... If you do not specify a name, one will be generated
        # automatically." (CloudFormation template reference), so no name is given: generated physical names.
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(2),
            period_override=cloudwatch.PeriodOverride.INHERIT,
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# Streaming metrics ({config.name})\n"
                    f"Each measure's total per {config.streaming.frequency_minutes}-minute interval (all dimension "
                    "combinations), the anomaly groups the detector opened, the detector's and the streaming job's "
                    "health, and the alarms. Detector figures are timestamped at the interval's start and arrive a "
                    'few minutes after it ends. See the README, section "Dashboard".'
                ),
                width=FULL,
                height=2,
            )
        )
        # One widget per measure: its total, with the severity of its worst group on the right axis.
        self.dashboard.add_widgets(
            *[
                cloudwatch.GraphWidget(
                    title=f"{measure.name} ({measure.aggregation}) per interval, all combinations",
                    left=[self._metric("MeasureTotal", measure=measure.name, label=f"{measure.name} total")],
                    right=[self._metric("MaxGroupSeverity", measure=measure.name, label="worst group's severity")],
                    right_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="severity", show_units=False),
                    left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                    width=HALF,
                    height=GRAPH_HEIGHT,
                )
                for measure in measures
            ]
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Open anomaly groups per measure",
                left=[self._metric("AnomalyGroups", measure=measure.name, label=measure.name) for measure in measures],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                stacked=True,
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Anomaly groups, all measures",
                left=[
                    self._metric("AnomalyGroups", label="open groups"),
                    self._metric("NewAnomalyGroups", label="new groups"),
                ],
                right=[self._metric("MaxGroupSeverity", label="worst severity")],
                right_y_axis=cloudwatch.YAxisProps(min=0, max=100, label="severity", show_units=False),
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Worst group severity per measure",
                left=[
                    self._metric("MaxGroupSeverity", measure=measure.name, label=measure.name) for measure in measures
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100, show_units=False),
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.streaming.anomaly_threshold,
                        label="anomaly threshold",
                        fill=cloudwatch.Shading.NONE,
                    )
                ],
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
        )
        five_minutes = Duration.minutes(5)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Detector runs (Lambda)",
                left=[
                    detector_function.metric_invocations(period=five_minutes, statistic="Sum", label="invocations"),
                    detector_function.metric_errors(period=five_minutes, statistic="Sum", label="errors"),
                    detector_function.metric_throttles(period=five_minutes, statistic="Sum", label="throttles"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Detector duration (Lambda)",
                left=[
                    detector_function.metric_duration(period=five_minutes, statistic="Average", label="average"),
                    detector_function.metric_duration(period=five_minutes, statistic="Maximum", label="maximum"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Series scored and warming up",
                left=[
                    self._metric("SeriesScored", label="series scored"),
                    self._metric("SeriesWarmingUp", label="series warming up"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Intervals: empty, rows read and skipped",
                left=[
                    self._metric("RowsRead", label="rows read"),
                    self._metric("SkippedRows", label="skipped rows"),
                ],
                right=[self._metric("EmptyInterval", label="empty interval (1 = no data)")],
                right_y_axis=cloudwatch.YAxisProps(min=0, max=1, show_units=False),
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Alerts sent",
                left=[self._metric("AlertsSent", label="alerts")],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Streaming job: supervisor's view",
                left=[
                    supervisor.metric("JobDesired", job, self._interval).with_(label="should run (1)"),
                    supervisor.metric("JobDown", job, self._interval).with_(label="down (1)"),
                    supervisor.metric("UnexpectedRunEnd", job, self._interval, "Sum").with_(label="runs ended"),
                    supervisor.metric("RunsStarted", job, self._interval, "Sum").with_(label="runs started"),
                    supervisor.metric("GaveUp", job, self._interval).with_(label="gave up (1)"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=THIRD,
                height=GRAPH_HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Streaming job: Kinesis consumer lag (Glue)",
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            f'SEARCH(\'{{Glue}} MetricName="{GLUE_CONSUMER_LAG_METRIC}" "{job.job_name}"\', '
                            f"'Maximum', {int(five_minutes.to_seconds())})"
                        ),
                        label="max consumer lag",
                        period=five_minutes,
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, label="milliseconds", show_units=False),
                width=HALF,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Streaming job's supervisor (Lambda)",
                left=[
                    supervisor.function.function.metric_invocations(
                        period=five_minutes, statistic="Sum", label="checks"
                    ),
                    supervisor.function.function.metric_errors(period=five_minutes, statistic="Sum", label="errors"),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=HALF,
                height=GRAPH_HEIGHT,
            ),
        )
        if alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(
                    title="Streaming alarms", alarms=list(alarms), width=FULL, height=max(2, 1 + len(alarms) // 3)
                )
            )
            self.dashboard.add_widgets(
                *[
                    cloudwatch.AlarmWidget(
                        alarm=alarm,
                        title=alarm.alarm_name,
                        width=THIRD,
                        height=GRAPH_HEIGHT,
                        left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                    )
                    for alarm in alarms
                ]
            )

    def _metric(
        self, name: str, *, label: str, measure: str | None = None, statistic: str = "Maximum"
    ) -> cloudwatch.Metric:
        """A detector metric over one interval. Maximum by default: a retried interval republishes the same
        value, which a Sum would double."""
        return cloudwatch.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"Measure": measure} if measure is not None else None,
            period=self._interval,
            statistic=statistic,
            label=label,
        )
