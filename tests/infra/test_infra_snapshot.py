"""Snapshots of the key resources, so an unintended change shows up as a readable diff.

Asset hashes (and anything else derived from file contents) are masked, so editing runtime code
does not churn the snapshot. Regenerate on purpose with `UPDATE_SNAPSHOTS=1 make test`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from infra_synth import Synthesized

SNAPSHOTS = Path(__file__).parent / "snapshots"
# 64-hex asset hashes, in S3 keys, image tags and asset parameter names.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
KEY_RESOURCE_TYPES = (
    "AWS::SQS::Queue",
    "AWS::Lambda::EventSourceMapping",
    "AWS::ECS::TaskDefinition",
    "AWS::Glue::Job",
    "AWS::Glue::SecurityConfiguration",
    "AWS::SageMaker::Pipeline",
    "AWS::Glue::Table",
    "AWS::Kinesis::Stream",
    "Custom::GlueStreamingJobRun",
)


def _masked(value: Any) -> Any:
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(value, sort_keys=True)))


def _key_resources(synth: Synthesized) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for stack in synth.all_stacks():
        template = synth.template(stack)
        for resource_type in KEY_RESOURCE_TYPES:
            for logical_id, resource in sorted(template.find_resources(resource_type).items()):
                snapshot[f"{stack.stack_name}/{logical_id}"] = _masked(resource)
    return snapshot


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_key_resources_match_the_snapshot(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(variant)
    current = _key_resources(synth)
    path = SNAPSHOTS / f"{variant}-key-resources.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no snapshot at {path}; run with UPDATE_SNAPSHOTS=1 to create it"
    expected = json.loads(path.read_text())
    assert sorted(current) == sorted(expected)
    for key in expected:
        assert current[key] == expected[key], f"{key} changed; if intended, regenerate with UPDATE_SNAPSHOTS=1"


def test_masking_hides_asset_hashes_only() -> None:
    value = {"S3Key": "a" * 64 + ".zip", "Name": "FargateTask"}
    assert _masked(value) == {"S3Key": "<asset-hash>.zip", "Name": "FargateTask"}
