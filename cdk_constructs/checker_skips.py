"""Findings of checkov and cfn-lint that are accepted, each with its written reason, in the resource's metadata.

checkov reads ``Metadata.checkov.skip: [{"id": ..., "comment": ...}]``; cfn-lint reads
``Metadata.cfn-lint.config.ignore_checks`` and ignores the ``reasons`` map we keep beside it (the
tests check that every skipped rule has a reason there). Like cdk-nag suppressions (cdk_constructs.nag),
a skip is for a finding that does not apply, never for one that is merely inconvenient.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct

MIN_REASON_CHARS = 40


def _resource(scope: IConstruct) -> CfnResource:
    if isinstance(scope, CfnResource):
        return scope
    child = scope.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to carry a skip")
    return child


def _require_reason(check_id: str, reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_CHARS:
        raise ValueError(f"a real reason is required to skip {check_id}")


def skip_checkov(scope: IConstruct, check_id: str, reason: str) -> None:
    """Accept one checkov check on the resource of `scope` (idempotent per check id)."""
    _require_reason(check_id, reason)
    resource = _resource(scope)
    metadata: dict[str, Any] = resource.get_metadata("checkov") or {"skip": []}
    if all(skip["id"] != check_id for skip in metadata["skip"]):
        metadata["skip"].append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", metadata)


def skip_cfn_lint(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cfn-lint rule (for example a serverless rule, WS1004) on the resource of `scope`."""
    _require_reason(rule_id, reason)
    resource = _resource(scope)
    metadata: dict[str, Any] = resource.get_metadata("cfn-lint") or {"config": {"ignore_checks": []}, "reasons": {}}
    if rule_id not in metadata["config"]["ignore_checks"]:
        metadata["config"]["ignore_checks"].append(rule_id)
    metadata["reasons"][rule_id] = reason
    resource.add_metadata("cfn-lint", metadata)


# Reasons shared by more than one resource.
NO_VPC_NEEDED = (
    "The function calls only AWS APIs over their public endpoints and reaches no private resource; a VPC "
    "would add NAT gateways or interface endpoints and no protection."
)
NO_SECRETS_IN_ENVIRONMENT = (
    "The environment holds names, ARNs and numbers only, no secrets; Lambda encrypts it at rest with its "
    "AWS managed key, so a customer-managed key would protect nothing more."
)
LOG_GROUP_SERVICE_ENCRYPTION = (
    "CloudWatch Logs encrypts every log group at rest with service-managed keys; these logs hold no "
    "secrets, so a per-group customer-managed key would add cost and a key policy and no protection."
)
NO_RESERVED_CONCURRENCY = (
    "Reserving concurrency fails the deploy on accounts whose concurrency quota is still the low default, "
    "and this function's concurrency is already bounded by its trigger (SQS maximum concurrency, a schedule "
    "or EventBridge rule); overlapping invocations are safe through the token table's conditional writes."
)
OWN_LOG_GROUP_HAS_RETENTION = (
    "The function logs to its own log group through LoggingConfig.LogGroup, and that group has a "
    "RetentionInDays; the rule only recognises groups named /aws/lambda/<function name>."
)
CDK_PROVIDER = (
    "This is a CDK-managed custom-resource handler that CloudFormation invokes only during deploys; its code, "
    "role and settings belong to the CDK library, and CloudFormation reports its failures."
)


def skip_on_invoke_permissions(rule: IConstruct, rule_id: str, reason: str) -> None:
    """Skip a cfn-lint rule on the lambda:InvokeFunction permissions an EventBridge rule's targets created."""
    from aws_cdk import aws_lambda as lambda_

    permissions = [node for node in rule.node.find_all() if isinstance(node, lambda_.CfnPermission)]
    if not permissions:
        raise ValueError(f"{rule.node.path} has no Lambda permission to carry a skip")
    for permission in permissions:
        skip_cfn_lint(permission, rule_id, reason)


ASYNC_DESTINATION_NOT_MATCHED = (
    "The function has an EventInvokeConfig with an on-failure destination; the rule compares this permission's "
    "FunctionName (Fn::GetAtt Arn) with the config's (Ref) and so does not see it."
)
