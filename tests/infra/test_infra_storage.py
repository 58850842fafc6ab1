"""Storage stack: the buckets and the metrics stream, dev (disposable) versus prod (retained)."""

from __future__ import annotations

from aws_cdk.assertions import Match
from infra_synth import Synthesized


def _data_buckets(synth: Synthesized) -> dict[str, dict]:
    buckets = synth.template(synth.stacks.storage).find_resources("AWS::S3::Bucket")
    return {logical_id: b for logical_id, b in buckets.items() if "AccessLogs" not in logical_id}


def test_every_bucket_blocks_public_access_and_encrypts(dev: Synthesized) -> None:
    buckets = dev.template(dev.stacks.storage).find_resources("AWS::S3::Bucket")
    assert len(buckets) == 5  # raw, prepared, artifacts, metrics + access logs
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert sse["SSEAlgorithm"] == "AES256", logical_id


def test_data_buckets_log_access_to_the_log_bucket(dev: Synthesized) -> None:
    for logical_id, bucket in _data_buckets(dev).items():
        logging = bucket["Properties"]["LoggingConfiguration"]
        assert "AccessLogs" in logging["DestinationBucketName"]["Ref"], logical_id


def test_every_bucket_policy_denies_plain_http(dev: Synthesized) -> None:
    policies = dev.template(dev.stacks.storage).find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 5
    for logical_id, policy in policies.items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ), logical_id


def test_dev_buckets_are_destroyed_with_their_objects(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.storage)
    for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Delete", logical_id
    # One auto-delete custom resource per bucket empties it before deletion.
    assert len(template.find_resources("Custom::S3AutoDeleteObjects")) == 5
    assert dev.stacks.storage.termination_protection is False


def test_prod_buckets_are_retained_versioned_and_protected(prod: Synthesized) -> None:
    template = prod.template(prod.stacks.storage)
    for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Retain", logical_id
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
    assert template.find_resources("Custom::S3AutoDeleteObjects") == {}
    for stack in prod.all_stacks():
        assert stack.termination_protection is True, stack.stack_name


def test_metrics_stream_is_encrypted_with_a_rotating_customer_key(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.storage)
    template.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": Match.any_value()},
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_stack_names_carry_the_environment(dev: Synthesized, prod: Synthesized) -> None:
    assert {s.stack_name for s in dev.all_stacks()} >= {"taxi-anomaly-dev-storage", "taxi-anomaly-dev-data-prep"}
    assert {s.stack_name for s in prod.all_stacks()} >= {"taxi-anomaly-prod-storage", "taxi-anomaly-prod-data-prep"}
