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
        attached.append(node.node.path)
    return attached


def _is_provider_function(node: IConstruct) -> bool:
    scope = node.node.scope
    return (
        isinstance(node, CfnResource)
        and node.cfn_resource_type == "AWS::Lambda::Function"
        and scope is not None
        and scope.node.id.endswith(_PROVIDER_SUFFIX)
    )
