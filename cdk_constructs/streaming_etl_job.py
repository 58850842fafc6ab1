"""The Glue streaming job: Kinesis JSON events -> interval-partitioned CSV, started on deploy, stopped on destroy."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import custom_resources as cr
from constructs import Construct

from app_config import EnvironmentConfig
from cdk_constructs.checker_skips import LOG_GROUP_SERVICE_ENCRYPTION, skip_checkov
from cdk_constructs.glue_prep_job import GLUE_VERSION
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.python_function import FunctionSpec, PythonFunction, retention_days
from cdk_constructs.s3_grants import grant_prefix_read, grant_prefix_write

SCRIPT = Path(__file__).resolve().parents[1] / "glue_scripts" / "streaming_etl.py"
INTERVALS_PREFIX = "metrics/intervals/"
QUARANTINE_PREFIX = "metrics/quarantine/"
CHECKPOINT_PREFIX = "metrics/checkpoints/"
# U+0001 cannot appear unescaped in JSON, so each Kinesis record arrives whole in the one `raw` column.
RAW_RECORD_DELIMITER = "\u0001"


class MetricsCatalog(Construct):
    """Glue Data Catalog database and the Kinesis-sourced table the streaming job reads from."""

    def __init__(self, scope: Construct, construct_id: str, *, stream: kinesis.IStream, env_name: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.database_name = f"taxi_anomaly_{env_name.replace('-', '_')}_metrics"
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="E-commerce metrics events"
            ),
        )
        self.table_name = "ecommerce_events"
        self.table = glue.CfnTable(
            self,
            "EventsTable",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description="Raw JSON e-commerce events on the metrics stream, one record per row",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "csv",
                    "typeOfData": "kinesis",
                    "streamARN": stream.stream_arn,
                    "delimiter": RAW_RECORD_DELIMITER,
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name="raw", type="string")],
                    location=stream.stream_name,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                        parameters={"field.delim": RAW_RECORD_DELIMITER},
                    ),
                ),
            ),
        )
        self.table.node.add_dependency(self.database)
        self.database_arn = stack.format_arn(service="glue", resource="database", resource_name=self.database_name)
        self.table_arn = stack.format_arn(
            service="glue", resource="table", resource_name=f"{self.database_name}/{self.table_name}"
        )
        self.catalog_arn = stack.format_arn(service="glue", resource="catalog")


class StreamingEtlJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream,
        catalog: MetricsCatalog,
        metrics_bucket: s3.IBucket,
        security: GlueSecurity,
    ) -> None:
        super().__init__(scope, construct_id)
        streaming = config.streaming
        stack = Stack.of(self)
        script = s3_assets.Asset(self, "Script", path=str(SCRIPT))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Runs the streaming metrics ETL: reads the stream, writes interval CSV",
        )
        role = self.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[script.bucket.arn_for_objects(script.s3_object_key)]
            )
        )
        stream.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTables", "glue:GetDatabase", "glue:GetPartitions"],
                resources=[catalog.catalog_arn, catalog.database_arn, catalog.table_arn],
            )
        )
        grant_prefix_write(role, metrics_bucket, INTERVALS_PREFIX)
        grant_prefix_write(role, metrics_bucket, QUARANTINE_PREFIX)
        # Spark's checkpoint is read back after restarts.
        grant_prefix_write(role, metrics_bucket, CHECKPOINT_PREFIX)
        grant_prefix_read(role, metrics_bucket, CHECKPOINT_PREFIX)
        security.grant_job_role(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The job writes interval partitions, quarantine files and its checkpoint under three fixed prefixes "
            "of the metrics bucket; file names are generated by Spark, so a prefix is the narrowest scope.",
            [matching(rf"^Resource::.*/({INTERVALS_PREFIX}|{QUARANTINE_PREFIX}|{CHECKPOINT_PREFIX})\*$")],
        )

        bucket = metrics_bucket.bucket_name
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
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            security_configuration=security.configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--database_name": catalog.database_name,
                "--table_name": catalog.table_name,
                "--output_uri": f"s3://{bucket}/{INTERVALS_PREFIX}",
                "--quarantine_uri": f"s3://{bucket}/{QUARANTINE_PREFIX}",
                "--checkpoint_uri": f"s3://{bucket}/{CHECKPOINT_PREFIX}",
                "--window_size_seconds": str(streaming.window_size_seconds),
                "--frequency_minutes": str(streaming.frequency_minutes),
                "--dimension_column": streaming.dimension_column,
                "--timestamp_column": streaming.timestamp_column,
                "--measure_column": streaming.measure_column,
            },
        )
        self.job.node.add_dependency(catalog.table)
        self.job_name: str = self.job.ref
        self.job_arn = stack.format_arn(service="glue", resource="job", resource_name=self.job.ref)
        self._run_while_deployed(config)

    def _run_while_deployed(self, config: EnvironmentConfig) -> None:
        """A custom resource starts the job on deploy and stops its runs on destroy."""
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
                description="Starts the streaming ETL job on deploy and stops it on destroy",
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
            properties={"JobName": self.job.ref},
        )
        self.running_job.node.add_dependency(self.job)
