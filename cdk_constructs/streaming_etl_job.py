"""The Glue streaming job: Kinesis JSON events -> interval-partitioned CSV; started, restarted and stopped with the
stack by a custom resource whose properties change whenever what the job runs changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CustomResource, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from app_config import EnvironmentConfig, StreamingConfig
from cdk_constructs.checker_skips import LOG_GROUP_SERVICE_ENCRYPTION, skip_checkov
from cdk_constructs.glue_prep_job import GLUE_VERSION
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.python_function import FunctionSpec, PythonFunction, retention_days
from cdk_constructs.s3_grants import grant_prefix_read, grant_prefix_write
from cdk_constructs.service_roles import service_principal

SCRIPT = Path(__file__).resolve().parents[1] / "glue_scripts" / "streaming_etl.py"
INTERVALS_PREFIX = "metrics/intervals/"
QUARANTINE_PREFIX = "metrics/quarantine/"
CHECKPOINT_PREFIX = "metrics/checkpoints/"
# AWS Glue API, Job.Timeout: "Jobs must have timeout values less than 7 days or 10080 minutes ... When the value is
# left blank, the timeout is defaulted to ... 480 minutes for Glue version 5.0 and later ... For streaming jobs, if
# you have set up a maintenance window, it will be restarted during the maintenance window after 7 days."
# A blank timeout would end the streaming run after 8 hours, so the job asks for the 7-day maximum.
STREAMING_TIMEOUT_MINUTES = 7 * 24 * 60
# What the job's settings hash covers, besides the script: the run reads them once, at start.
_RESTART_SETTINGS = ("glue_version", "worker_type", "number_of_workers", "max_retries", "timeout", "arguments")


def run_config_hash(script: Path, settings: Mapping[str, object]) -> str:
    """SHA-256 over the script's bytes and the job's static settings (no unresolved tokens: those are not stable
    between synths; the custom resource carries their resolved values itself)."""
    digest = hashlib.sha256(script.read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunPolicyProperties:
    """The custom resource's ``RunPolicy`` property (the supervisor gets the same values as environment)."""

    mode: str
    generator_rule_name: str = ""
    active_hours_utc: str = ""

    @classmethod
    def of(cls, streaming: StreamingConfig, generator_rule: events.IRule | None) -> RunPolicyProperties:
        hours = streaming.job_active_hours_utc
        return cls(
            mode=streaming.job_run_mode,
            generator_rule_name=generator_rule.rule_name if generator_rule is not None else "",
            active_hours_utc=f"{hours[0]}-{hours[1]}" if hours else "",
        )

    def as_properties(self) -> dict[str, str]:
        return {
            "Mode": self.mode,
            "GeneratorRuleName": self.generator_rule_name,
            "ActiveHoursUtc": self.active_hours_utc,
        }


class StreamingEtlJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream,
        metrics_bucket: s3.IBucket,
        security: GlueSecurity,
        generator_rule: events.IRule | None,
    ) -> None:
        super().__init__(scope, construct_id)
        streaming = config.streaming
        stack = Stack.of(self)
        script = s3_assets.Asset(self, "Script", path=str(SCRIPT))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=service_principal(self, "glue.amazonaws.com"),
            description="Runs the streaming metrics ETL: reads the stream, writes interval CSV",
        )
        role = self.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[script.bucket.arn_for_objects(script.s3_object_key)]
            )
        )
        # Read access level on the stream (the Glue guide's prerequisite for reading Kinesis), plus kms:Decrypt
        # on its key when it has a customer-managed one.
        stream.grant_read(role)
        grant_prefix_write(role, metrics_bucket, INTERVALS_PREFIX, hadoop=True)
        grant_prefix_write(role, metrics_bucket, QUARANTINE_PREFIX, hadoop=True)
        # Spark's checkpoint is read back after restarts.
        grant_prefix_write(role, metrics_bucket, CHECKPOINT_PREFIX, hadoop=True)
        grant_prefix_read(role, metrics_bucket, CHECKPOINT_PREFIX, hadoop=True)
        security.grant_job_role(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The job writes interval partitions, quarantine files and its checkpoint under three fixed prefixes "
            "of the metrics bucket; file names are generated by Spark, so a prefix is the narrowest scope.",
            [matching(rf"^Resource::.*/({INTERVALS_PREFIX}|{QUARANTINE_PREFIX}|{CHECKPOINT_PREFIX})\*$")],
        )

        # Glue 5.0 logs in real time (the deprecated --enable-continuous-cloudwatch-log is not needed);
        # --custom-logGroup-prefix names the groups "<prefix>/error" and "<prefix>/output" (AWS Glue guide,
        # Logging for AWS Glue jobs), created here so they have a retention and are deleted with dev.
        self.log_group_prefix = f"/aws-glue/taxi-anomaly-{config.name}-streaming-etl"
        self.log_groups = [
            logs.LogGroup(
                self,
                f"{suffix.capitalize()}Logs",
                log_group_name=f"{self.log_group_prefix}/{suffix}",
                retention=retention_days(config.log_retention_days),
                encryption_key=security.key,
                removal_policy=RemovalPolicy.DESTROY if config.destroy_data_with_stack else RemovalPolicy.RETAIN,
            )
            for suffix in ("error", "output")
        ]

        bucket = metrics_bucket.bucket_name
        arguments = {
            "--job-language": "python",
            "--enable-metrics": "true",
            "--enable-observability-metrics": "true",
            "--custom-logGroup-prefix": self.log_group_prefix,
            "--source_stream_arn": stream.stream_arn,
            "--starting_position": streaming.source_starting_position,
            "--output_uri": f"s3://{bucket}/{INTERVALS_PREFIX}",
            "--quarantine_uri": f"s3://{bucket}/{QUARANTINE_PREFIX}",
            # One checkpoint per stream: the checkpoint holds that stream's shard positions, so reading another
            # stream starts afresh at --starting_position instead of from positions that are not its own.
            "--checkpoint_uri": f"s3://{bucket}/{CHECKPOINT_PREFIX}{stream.stream_name}/",
            "--window_size_seconds": str(streaming.window_size_seconds),
            "--frequency_minutes": str(streaming.frequency_minutes),
            "--batch_max_retries": str(streaming.batch_max_retries),
            # The metric set's fields, which the job keeps (CSV header: timestamp, dimensions, measures); the
            # aggregation is the detector's business. Static values, so the restart hash covers them.
            "--dimensions": ",".join(streaming.dimensions),
            "--measures": ",".join(measure.name for measure in streaming.measures),
            "--timestamp_column": streaming.timestamp_column,
        }
        self.job = glue.CfnJob(
            self,
            "Job",
            role=role.role_arn,
            description="Buckets e-commerce events into time intervals and writes CSV partitions",
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="gluestreaming", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=streaming.glue_worker_type,
            number_of_workers=streaming.glue_number_of_workers,
            # Glue retries a failed run itself this many times; the supervisor takes over after that.
            max_retries=streaming.job_max_retries,
            timeout=STREAMING_TIMEOUT_MINUTES,
            # "AWS Glue will restart the job within 3 hours of the specified maintenance window" (Job API).
            maintenance_window=streaming.maintenance_window,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=security.configuration.ref,
            default_arguments=arguments,
        )
        self.job_name: str = self.job.ref
        self.job_arn = stack.format_arn(service="glue", resource="job", resource_name=self.job.ref)
        static_arguments = {name: value for name, value in arguments.items() if not Token.is_unresolved(value)}
        settings: dict[str, object] = {
            "glue_version": GLUE_VERSION,
            "worker_type": streaming.glue_worker_type,
            "number_of_workers": streaming.glue_number_of_workers,
            "max_retries": streaming.job_max_retries,
            "timeout": STREAMING_TIMEOUT_MINUTES,
            "arguments": static_arguments,
        }
        assert tuple(settings) == _RESTART_SETTINGS
        self.run_config_hash = run_config_hash(SCRIPT, settings)
        # Values known only at deploy time (bucket, stream ARN): CloudFormation resolves them in the properties.
        self.watched_arguments = {name: value for name, value in arguments.items() if Token.is_unresolved(value)}
        self.run_policy = RunPolicyProperties.of(streaming, generator_rule)
        self._run_while_deployed(config, generator_rule)

    def _run_while_deployed(self, config: EnvironmentConfig, generator_rule: events.IRule | None) -> None:
        """A custom resource starts the job on deploy, restarts it when its code changes and stops it on destroy."""
        control = PythonFunction(
            self,
            "JobControl",
            spec=FunctionSpec(
                package="streaming_job_control",
                failed_invocations=(
                    "Invoked synchronously by the custom-resource provider framework, which reports a failure to "
                    "CloudFormation; a Lambda dead-letter queue never applies to synchronous invocations."
                ),
                handler="handler.on_event",
                description="Starts the streaming ETL job on deploy, restarts it on change and stops it on destroy",
                # Delete waits for the runs to stop (up to ~10 minutes) before the job is removed.
                timeout_seconds=900,
            ),
            log_retention_days=config.log_retention_days,
            destroy_logs_with_stack=True,
        )
        control.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"], resources=[self.job_arn]
            )
        )
        if generator_rule is not None:
            # Run mode with_generator reads whether the generator's schedule is enabled.
            control.role.add_to_policy(
                iam.PolicyStatement(actions=["events:DescribeRule"], resources=[generator_rule.rule_arn])
            )
        self.control = control
        # The framework's own log group: the environment's retention, gone with the stack (issue 11, item 13).
        provider_logs = logs.LogGroup(
            self,
            "JobControlProviderLogs",
            retention=retention_days(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        skip_checkov(provider_logs, "CKV_AWS_158", LOG_GROUP_SERVICE_ENCRYPTION)
        provider = cr.Provider(self, "JobControlProvider", on_event_handler=control.function, log_group=provider_logs)
        acknowledge(
            provider,
            "AwsSolutions-IAM5",
            "The CDK custom-resource framework invokes only our job-control function (and its versions).",
            [matching(r"^Resource::<.*JobControl.*\.Arn>:\*$")],
        )
        acknowledge(
            provider,
            "AwsSolutions-IAM4",
            "The CDK custom-resource framework function uses AWSLambdaBasicExecutionRole for its own logs.",
            ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        acknowledge(
            provider,
            "AwsSolutions-L1",
            "The CDK custom-resource framework pins its own Node.js runtime; it only relays deploy events.",
        )
        self.running_job = CustomResource(
            self,
            "RunningJob",
            service_token=provider.service_token,
            resource_type="Custom::GlueStreamingJobRun",
            properties={
                "JobName": self.job.ref,
                "RunConfigHash": self.run_config_hash,
                "Watched": self.watched_arguments,
                "RunPolicy": self.run_policy.as_properties(),
            },
        )
        # The first run starts only once the job, its role's policies (the role's DefaultPolicy is its child),
        # its security configuration and its log groups exist.
        self.running_job.node.add_dependency(self.job, self.role, *self.log_groups)
