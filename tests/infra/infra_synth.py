"""Synthesizes each environment once per test session (synth with cdk-nag takes seconds)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app_config import EnvironmentConfig, load_environment
from stacks.app_stacks import AppStacks, build_stacks

REPO_ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def cdk_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def environment(name: str) -> EnvironmentConfig:
    return load_environment(cdk_context()["environments"], name, default_account="123456789012")


class Synthesized:
    """One synthesized app: its stacks, their templates and cloud assembly."""

    def __init__(self, config: EnvironmentConfig, outdir: Path) -> None:
        # Skipping bundling keeps synth free of pip and network; assets are still staged.
        self.app = cdk.App(outdir=str(outdir), context={**cdk_context(), "aws:cdk:bundling-stacks": []})
        self.config = config
        self.stacks: AppStacks = build_stacks(self.app, config)
        cdk.Aspects.of(self.app).add(AwsSolutionsChecks(verbose=True))
        self.assembly = self.app.synth()

    def template(self, stack: cdk.Stack) -> cdk.assertions.Template:
        return cdk.assertions.Template.from_json(self.assembly.get_stack_by_name(stack.stack_name).template)

    def all_stacks(self) -> list[cdk.Stack]:
        return [getattr(self.stacks, field) for field in self.stacks.__dataclass_fields__]


@cache
def synth(name: str, completion: str) -> Synthesized:
    config = environment(name)
    if completion != config.data_prep.completion:
        config = replace(config, data_prep=replace(config.data_prep, completion=completion))  # type: ignore[arg-type]
    outdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cdk-test-{os.getpid()}-{name}-{completion}"
    return Synthesized(config, outdir)


def logical_id(
    template: cdk.assertions.Template, resource_type: str, path_fragment: str, excluding: str | None = None
) -> str:
    """The one resource of a type whose logical ID starts with the fragment (and does not contain `excluding`)."""
    matches = [
        lid
        for lid in template.find_resources(resource_type)
        if lid.startswith(path_fragment) and (excluding is None or excluding not in lid)
    ]
    assert len(matches) == 1, f"expected one {resource_type} matching {path_fragment!r}, got {matches}"
    return matches[0]


def role_statements(template: cdk.assertions.Template, role_fragment: str) -> list[dict[str, Any]]:
    """Every policy statement attached (as an inline AWS::IAM::Policy) to the role matching the fragment."""
    role_id = logical_id(template, "AWS::IAM::Role", role_fragment)
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def role_actions(template: cdk.assertions.Template, role_fragment: str) -> set[str]:
    actions: set[str] = set()
    for statement in role_statements(template, role_fragment):
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def role_grants(template: cdk.assertions.Template, role_fragment: str) -> set[tuple[str, str]]:
    """(action, resource) pairs, flattened: minimizePolicies merges statements, so compare pairs."""
    pairs: set[tuple[str, str]] = set()
    for statement in role_statements(template, role_fragment):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs.update((action, json.dumps(resource, sort_keys=True)) for action in actions for resource in resources)
    return pairs
