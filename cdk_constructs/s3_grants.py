"""Prefix-scoped S3 grants: the narrowest S3 access expressible for run-time object names."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3


def _grant_prefix_listing(role: iam.IRole, bucket: s3.IBucket, prefix: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        )
    )


def grant_prefix_read(role: iam.IRole, bucket: s3.IBucket, prefix: str) -> None:
    """List and get objects under one prefix only."""
    _grant_prefix_listing(role, bucket, prefix)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
    )


def grant_prefix_write(role: iam.IRole, bucket: s3.IBucket, prefix: str) -> None:
    """Spark's overwrite lists, deletes and rewrites its output prefix; nothing outside it."""
    _grant_prefix_listing(role, bucket, prefix)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resources=[bucket.arn_for_objects(f"{prefix}*")],
        )
    )
