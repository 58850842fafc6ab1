"""The Glue PySpark job that turns raw taxi trips into the model's per-half-hour features."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from app_config import DataPrepConfig
from cdk_constructs.glue_security import GlueSecurity
from cdk_constructs.nag import acknowledge, matching
from cdk_constructs.s3_grants import grant_prefix_read, grant_prefix_write
from cdk_constructs.service_roles import service_principal

GLUE_VERSION = "5.0"
SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "glue_scripts"
RAW_PREFIX = "taxi/"
PREPARED_PREFIX = "taxi/"


class GluePrepJob(Construct):
    """`glueetl` job (Glue 5.0) whose role reads only the raw prefix and writes only the prepared prefix."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DataPrepConfig,
        raw_bucket: s3.IBucket,
        prepared_bucket: s3.IBucket,
        security: GlueSecurity,
    ) -> None:
        super().__init__(scope, construct_id)
        script = s3_assets.Asset(self, "Script", path=str(SCRIPTS_DIR / "taxi_prep.py"))
        # The feature module the script imports (shared with the backtest's pipeline replay), as a zip whose
        # root holds window_features.py: a single .py asset would be stored under its hash, not its name.
        features_module = s3_assets.Asset(self, "FeaturesModule", path=str(SCRIPTS_DIR / "features"))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=service_principal(self, "glue.amazonaws.com"),
            description="Runs the taxi prep Glue job: reads raw trips, writes prepared windows",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    script.bucket.arn_for_objects(script.s3_object_key),
                    features_module.bucket.arn_for_objects(features_module.s3_object_key),
                ],
            )
        )
        grant_prefix_read(self.role, raw_bucket, RAW_PREFIX, hadoop=True)
        grant_prefix_write(self.role, prepared_bucket, PREPARED_PREFIX, hadoop=True)
        security.grant_job_role(self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Object access is limited to the raw and prepared prefixes: input and output locations are chosen "
            "per pipeline execution under them, so a prefix is the narrowest scope.",
            [matching(rf"^Resource::.*/{RAW_PREFIX}\*$"), matching(rf"^Resource::.*/{PREPARED_PREFIX}\*$")],
        )

        self.job = glue.CfnJob(
            self,
            "Job",
            role=self.role.role_arn,
            description="Sums taxi passengers per 30-minute window and writes the model's training and scoring data",
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=config.glue_worker_type,
            number_of_workers=config.glue_number_of_workers,
            timeout=config.glue_timeout_minutes,
            max_retries=0,
            # Several pipeline executions may prepare data at once.
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=5),
            security_configuration=security.configuration.ref,
            # Glue 5.0 logs in real time without the deprecated --enable-continuous-cloudwatch-log and
            # --enable-continuous-log-filter ("with the introduction of AWS Glue 5.0, all jobs have real-time
            # logging capability", AWS Glue guide, Logging for AWS Glue jobs).
            default_arguments={
                "--job-language": "python",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                # --extra-py-files: "Additional Python files that AWS Glue adds to the Python path before
                # executing your script. Only individual files are supported" (CDK's extraPythonFiles, which
                # sets this argument); "Unless a library is contained in a single .py file, it should be
                # packaged in a .zip archive" (Glue: Zipping Libraries for Inclusion). A zip on the path makes
                # its root modules importable. The module needs numpy, which Glue 5.0 ships (pandas needs it).
                "--extra-py-files": features_module.s3_object_url,
            },
        )
        self.job_name: str = self.job.ref
        self.job_arn: str = Stack.of(self).format_arn(service="glue", resource="job", resource_name=self.job.ref)
