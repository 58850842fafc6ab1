"""The S3 buckets that hold the system's data, with one access-log bucket beside them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_constructs.checker_skips import skip_checkov
from cdk_constructs.nag import acknowledge

# Old versions of objects in kept (versioned) buckets are deleted this long after being replaced.
NONCURRENT_VERSION_DAYS = 30


class DataBuckets(Construct):
    """Raw input, prepared data, model artifacts and streaming metrics buckets.

    Every bucket blocks public access, encrypts at rest, refuses plain HTTP and
    logs access to a dedicated log bucket. In dev (``destroy_with_stack``) the
    buckets and their objects go away with the stack; otherwise they are retained.
    """

    def __init__(self, scope: Construct, construct_id: str, *, destroy_with_stack: bool) -> None:
        super().__init__(scope, construct_id)
        self._destroy = destroy_with_stack
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            **self._common(),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it to itself would loop.",
        )
        skip_checkov(
            self.access_logs, "CKV_AWS_18", "This is the access-log bucket itself; logging it to itself would loop."
        )
        skip_checkov(
            self.access_logs,
            "CKV_AWS_21",
            "Access logs are written once by the S3 logging service and expire after 90 days; versioning would "
            "only keep copies of expired logs.",
        )
        self.raw = self._data_bucket("Raw", "raw/")
        self.prepared = self._data_bucket("Prepared", "prepared/")
        self.artifacts = self._data_bucket("Artifacts", "artifacts/")
        self.metrics = self._data_bucket("Metrics", "metrics/")

    def _common(self) -> dict[str, Any]:
        return {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "versioned": not self._destroy,
            "removal_policy": RemovalPolicy.DESTROY if self._destroy else RemovalPolicy.RETAIN,
            "auto_delete_objects": self._destroy,
        }

    def _data_bucket(self, construct_id: str, log_prefix: str) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            construct_id,
            **self._common(),
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    # Versioned (kept) buckets: objects rewritten often (the detector's state, every
                    # interval) would otherwise pile up old versions forever.
                    noncurrent_version_expiration=None if self._destroy else Duration.days(NONCURRENT_VERSION_DAYS),
                )
            ],
        )
        if self._destroy:
            skip_checkov(
                bucket,
                "CKV_AWS_21",
                "In this environment the data is deleted with the stack by design (destroy_data_with_stack); "
                "where data is kept (prod) the buckets are versioned.",
            )
        return bucket
