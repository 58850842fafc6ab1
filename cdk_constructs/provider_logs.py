"""Log groups with retention for the Lambda functions CDK adds on its own (custom-resource providers).

CDK's singleton providers (``Custom::S3AutoDeleteObjects``, ``Custom::VpcRestrictDefaultSG``, ...)
create a raw ``AWS::Lambda::Function`` that logs to ``/aws/lambda/<name>``, a group Lambda creates on
first use with no retention and that outlives the stack. This gives each one a log group of its own,
with the environment's retention and removal policy, through the function's ``LoggingConfig``.
"""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from cdk_constructs.checker_skips import (
    CDK_PROVIDER,
    LOG_GROUP_SERVICE_ENCRYPTION,
    OWN_LOG_GROUP_HAS_RETENTION,
    skip_cfn_lint,
    skip_checkov,
)
from cdk_constructs.python_function import retention_days

_PROVIDER_SUFFIX = "CustomResourceProvider"


def give_provider_functions_log_groups(stack: Stack, *, retention: int, destroy_with_stack: bool) -> list[str]:
    """Attach a retained-for-`retention`-days log group to every CDK provider function in `stack`."""
    attached = []
    for node in stack.node.find_all():
        if not _is_provider_function(node):
            continue
        assert isinstance(node, CfnResource)
        provider = node.node.scope
        assert isinstance(provider, Construct)
        if provider.node.try_find_child("LogGroup") is not None:
            continue
        log_group = logs.LogGroup(
            provider,
            "LogGroup",
            retention=retention_days(retention),
            removal_policy=RemovalPolicy.DESTROY if destroy_with_stack else RemovalPolicy.RETAIN,
        )
        node.add_property_override("LoggingConfig.LogGroup", log_group.log_group_name)
        node.node.add_dependency(log_group)
        skip_checkov(log_group, "CKV_AWS_158", LOG_GROUP_SERVICE_ENCRYPTION)
        attached.append(node.node.path)
    for node in stack.node.find_all():
        if _is_provider_function(node) or _is_provider_framework_function(node):
            _accept_cdk_provider_findings(node)
    return attached


def _accept_cdk_provider_findings(function: IConstruct) -> None:
    for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"):
        skip_checkov(function, check, CDK_PROVIDER)
    skip_cfn_lint(function, "WS1000", CDK_PROVIDER)
    skip_cfn_lint(function, "ES1005", CDK_PROVIDER)
    skip_cfn_lint(function, "WS1004", OWN_LOG_GROUP_HAS_RETENTION)


def _is_provider_framework_function(node: IConstruct) -> bool:
    """The function custom_resources.Provider adds (its `framework-onEvent` child)."""
    scope = node.node.scope
    return (
        isinstance(node, CfnResource)
        and node.cfn_resource_type == "AWS::Lambda::Function"
        and scope is not None
        and scope.node.id.startswith("framework-on")
    )


def _is_provider_function(node: IConstruct) -> bool:
    scope = node.node.scope
    return (
        isinstance(node, CfnResource)
        and node.cfn_resource_type == "AWS::Lambda::Function"
        and scope is not None
        and scope.node.id.endswith(_PROVIDER_SUFFIX)
    )
