"""Prefix-scoped S3 grants: the narrowest S3 access expressible for run-time object names.

Hadoop file systems (what Spark and Glue write through) also probe the prefix itself as a file and as a
directory marker. Hadoop's S3A guide ("Working with IAM Assumed Roles", restricting S3A operations) grants three
resources for a path: "`/users/alice` Any file `alice` created under `/users`; `/users/alice/` The directory
marker `alice/` created under `/users`; `/users/alice/*` All files and directories under the path", and lists
``s3:AbortMultipartUpload`` among the write permissions. ``hadoop=True`` adds those.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3


def _object_arns(bucket: s3.IBucket, prefix: str, hadoop: bool) -> list[str]:
    # `prefix*` covers `prefix` when it ends in "/" (the directory marker); the bare path needs its own ARN.
    arns = [bucket.arn_for_objects(f"{prefix}*")]
    if hadoop and prefix.endswith("/"):
        arns.append(bucket.arn_for_objects(prefix.rstrip("/")))
    return arns


def _grant_prefix_listing(role: iam.IRole, bucket: s3.IBucket, prefix: str, hadoop: bool) -> None:
    listed = [prefix, f"{prefix}*"]
    if hadoop and prefix.endswith("/"):
        listed.append(prefix.rstrip("/"))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": listed}},
        )
    )


def grant_prefix_read(role: iam.IRole, bucket: s3.IBucket, prefix: str, *, hadoop: bool = False) -> None:
    """List and get objects under one prefix only."""
    _grant_prefix_listing(role, bucket, prefix, hadoop)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=_object_arns(bucket, prefix, hadoop))
    )


def grant_prefix_write(role: iam.IRole, bucket: s3.IBucket, prefix: str, *, hadoop: bool = False) -> None:
    """Spark's overwrite lists, deletes and rewrites its output prefix; nothing outside it."""
    _grant_prefix_listing(role, bucket, prefix, hadoop)
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    if hadoop:
        actions.append("s3:AbortMultipartUpload")
    role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=_object_arns(bucket, prefix, hadoop)))
