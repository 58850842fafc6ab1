"""Synth needs no credentials even with an account set: no context lookups, availability zones from config."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from infra_synth import Synthesized

from app_config import ConfigError, load_environment
from stacks.data_prep_stack import DataPrepStack


def test_an_account_set_causes_no_context_lookup(dev: Synthesized) -> None:
    # Given the dev app synthesized with an account (infra_synth sets 123456789012), as `cdk synth` would with
    # CDK_DEFAULT_ACCOUNT from the user's credentials
    assert dev.config.account == "123456789012"

    # Then the cloud assembly asks the CLI for no lookups (a lookup needs credentials and a cdk.context.json,
    # which is git-ignored), and the task's subnets take their zones from Fn::GetAZs at deploy time
    manifest = json.loads((Path(dev.assembly.directory) / "manifest.json").read_text())
    assert manifest.get("missing", []) == []
    subnets = dev.template(dev.stacks.data_prep).find_resources("AWS::EC2::Subnet")
    zones = [subnet["Properties"]["AvailabilityZone"] for subnet in subnets.values()]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]


def test_configured_zones_are_the_vpcs_zones() -> None:
    # The property the VPC asks for, with zones from config (no synth needed to see it)
    stack = SimpleNamespace(_availability_zones_from_config=("eu-west-1b", "eu-west-1c"))
    assert DataPrepStack.availability_zones.fget(stack) == ["eu-west-1b", "eu-west-1c"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        (["us-east-1a"], "must name two zones"),
        (["us-east-1a", "eu-west-1b"], "eu-west-1b are not in region us-east-1"),
    ],
)
def test_configured_zones_are_checked(zones: list[str], message: str) -> None:
    environments = {"dev": {"region": "us-east-1", "data_prep": {"availability_zones": zones}}}
    with pytest.raises(ConfigError, match=message):
        load_environment(environments, "dev")
