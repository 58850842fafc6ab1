"""Trust principals for service roles, with the confused-deputy conditions each service documents.

Use ``service_principal(scope, "ecs-tasks.amazonaws.com")`` wherever a role is assumed by an AWS
service (``iam.Role(assumed_by=...)``). The principal carries ``aws:SourceAccount`` (this account) and,
where the service documents it for role trust policies, an ``aws:SourceArn`` pattern, so that another
account's resource cannot make the service assume our role on its behalf (the confused deputy).

Conditions are added only where the service's own documentation shows them in a *trust policy*: a
condition a service does not populate when it calls AssumeRole makes the role unusable, and that
would only show at deploy or run time. For the services below whose documentation shows none, the
role is still scoped by ``iam:PassRole`` (only our code can pass it) and that is written down here.

Per service (what its documentation shows in a role trust policy):

- ``ecs-tasks``: aws:SourceAccount and aws:SourceArn ``arn:...:ecs:<region>:<account>:*``. ECS Developer
  Guide, "Amazon ECS task IAM role": the trust policy example carries
  ``"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-west-2:111122223333:*"}`` and
  ``"StringEquals": {"aws:SourceAccount": "111122223333"}``.
- ``sagemaker``: aws:SourceAccount. SageMaker Developer Guide, "Cross-service confused deputy
  prevention": "Use aws:SourceAccount if you want to allow any resource in that account to be
  associated with the cross-service use." The pipeline role is assumed for the pipeline, its training
  jobs, its model and its transform jobs, so the account (not one resource ARN) fits all of them.
- ``scheduler``: aws:SourceAccount. EventBridge Scheduler User Guide, "Set up the execution role": the
  trust policy example conditions on aws:SourceAccount.
- ``vpc-flow-logs``: aws:SourceAccount and aws:SourceArn ``arn:...:ec2:<region>:<account>:vpc-flow-log/*``.
  Amazon VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs": the trust policy
  example conditions on both, with ``arn:aws:ec2:region:account_id:vpc-flow-log/flow-log-id``.
- ``lambda``: none. The Lambda Developer Guide documents no such keys for execution-role trust
  policies (it documents lambda:SourceFunctionArn for the role's *credentials*, "Using source function
  ARN to control function access behavior").
- ``glue``: none. The Glue Developer Guide's job-role setup shows a trust policy without conditions.

These come from the documentation (see the README's "verified only on AWS" list): a deploy and one run
per completion mode is the proof that each service populates the keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


@dataclass(frozen=True)
class TrustRule:
    """What one service documents for its role trust policies."""

    source_account: bool
    # A format_arn(service=...) pattern for aws:SourceArn, or None when not documented.
    source_arn_service: str | None = None
    source_arn_resource: str = "*"


TRUST_RULES: dict[str, TrustRule] = {
    "ecs-tasks.amazonaws.com": TrustRule(source_account=True, source_arn_service="ecs"),
    "sagemaker.amazonaws.com": TrustRule(source_account=True),
    "scheduler.amazonaws.com": TrustRule(source_account=True),
    "vpc-flow-logs.amazonaws.com": TrustRule(
        source_account=True, source_arn_service="ec2", source_arn_resource="vpc-flow-log/*"
    ),
    "lambda.amazonaws.com": TrustRule(source_account=False),
    "glue.amazonaws.com": TrustRule(source_account=False),
}


def trust_conditions(scope: IConstruct, service: str) -> dict[str, dict[str, object]]:
    """The condition block for `service`'s trust statement (empty where the service documents none)."""
    if service not in TRUST_RULES:
        raise ValueError(f"no trust rule for {service}; add one to cdk_constructs/service_roles.py with its doc")
    rule = TRUST_RULES[service]
    stack = Stack.of(scope)
    conditions: dict[str, dict[str, object]] = {}
    if rule.source_account:
        conditions["StringEquals"] = {"aws:SourceAccount": stack.account}
    if rule.source_arn_service is not None:
        pattern = stack.format_arn(
            service=rule.source_arn_service,
            resource=rule.source_arn_resource,
            arn_format=ArnFormat.NO_RESOURCE_NAME,
        )
        conditions["ArnLike"] = {"aws:SourceArn": pattern}
    return conditions


def service_principal(scope: IConstruct, service: str) -> iam.IPrincipal:
    """`iam.ServicePrincipal(service)` with the documented confused-deputy conditions attached."""
    conditions = trust_conditions(scope, service)
    principal = iam.ServicePrincipal(service)
    return principal.with_conditions(conditions) if conditions else principal
