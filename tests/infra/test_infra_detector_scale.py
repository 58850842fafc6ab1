"""The detector's history rebuild and size: its aggregates prefix (env var and the only new write grant), and
its memory and timeout from config."""

from __future__ import annotations

from aws_cdk.assertions import Match
from infra_synth import Synthesized, role_grants

from cdk_constructs.anomaly_detector import AGGREGATES_PREFIX


def test_detector_writes_its_per_interval_aggregates_under_their_own_prefix(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "anomaly_detector.handler.lambda_handler",
            "Environment": {"Variables": Match.object_like({"AGGREGATES_PREFIX": AGGREGATES_PREFIX})},
        },
    )
    grants = role_grants(template, "DetectorRole")
    writes = {resource for action, resource in grants if action == "s3:PutObject"}
    assert any(f"/{AGGREGATES_PREFIX}*" in resource for resource in writes)
    # Still nothing written where the streaming job writes
    assert not any("/metrics/intervals/" in resource for resource in writes)


def test_detector_memory_and_timeout_come_from_config(prod: Synthesized) -> None:
    streaming = prod.config.streaming
    prod.template(prod.stacks.streaming).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "anomaly_detector.handler.lambda_handler",
            "MemorySize": streaming.detector_memory_mb,
            "Timeout": streaming.detector_timeout_seconds,
        },
    )
