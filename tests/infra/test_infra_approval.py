"""Approval: the table in the storage stack, the ApproveResults machinery, the registry group in the pipeline stack."""

from __future__ import annotations

from dataclasses import replace

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template
from infra_synth import Synthesized, cdk_context, environment, role_actions

from app_config import ApprovalConfig
from stacks.app_stacks import build_stacks


def test_the_approval_table_is_stateful_with_the_open_index_ttl_and_recovery(
    dev: Synthesized, prod: Synthesized
) -> None:
    dev.template(dev.stacks.storage).has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_ttl", "Enabled": True},
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "open-requests"})],
            "Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})],
        },
    )
    prod.template(prod.stacks.storage).has_resource("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain"})


def test_the_approval_queue_has_a_dlq_and_only_the_pipeline_may_send(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.approval)
    # queue, its DLQ, the EventBridge target DLQ, the expiry check's on-failure destination
    template.resource_count_is("AWS::SQS::Queue", 4)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": Match.any_value(),
                "maxReceiveCount": dev.config.approval.dlq_max_receive_count,
            }
        },
    )
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "sagemaker.amazonaws.com"},
                                "Condition": Match.object_like({"ArnLike": Match.any_value()}),
                            }
                        )
                    ]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
    )


def test_the_endpoint_is_a_function_url_with_reserved_concurrency(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.approval)
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE"})
    # No CORS at all (checkov's CKV2_AWS_75, asserted here): the page posts only to its own origin
    (url,) = template.find_resources("AWS::Lambda::Url").values()
    assert "Cors" not in url["Properties"]
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "approval_endpoint.handler.lambda_handler",
            "ReservedConcurrentExecutions": dev.config.approval.endpoint_reserved_concurrency,
        },
    )
    assert role_actions(template, "ApprovalEndpointRole") >= {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert "dynamodb:Scan" not in role_actions(template, "ApprovalEndpointRole")


def test_the_expiry_check_runs_on_its_schedule(dev: Synthesized) -> None:
    minutes = dev.config.approval.expiry_check_minutes
    dev.template(dev.stacks.approval).has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": f"rate({minutes} minutes)"}
    )


def test_a_failed_expiry_check_goes_to_an_alarmed_on_failure_queue(dev: Synthesized) -> None:
    # EventBridge invokes the check asynchronously: after Lambda's retries the event lands in a queue, not the void
    template = dev.template(dev.stacks.approval)
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    names = {str(alarm["Properties"].get("AlarmName")) for alarm in alarms.values()}
    assert f"taxi-anomaly-{dev.config.name}-approval-expiry-event-failed" in names


def test_approval_functions_answer_only_this_pipelines_steps(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.approval)
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("sagemaker:SendPipelineExecution") for action in _as_list(statement["Action"]))
    ]
    assert len(statements) == 3  # endpoint, notifier (failure only), expiry check
    for statement in statements:
        assert statement["Resource"] != "*"
        assert "/execution/*" in str(statement["Resource"])


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def test_approvers_come_from_config(tmp_path: object) -> None:
    config = environment("dev")
    config = replace(config, approval=ApprovalConfig(approver_emails=("ana@example.com", "bo@example.com")))
    app = cdk.App(outdir=str(tmp_path), context={**cdk_context(), "aws:cdk:bundling-stacks": []})
    stacks = build_stacks(app, config)
    template = Template.from_stack(stacks.approval)
    template.resource_count_is("AWS::SNS::Subscription", 2)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ana@example.com"})
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_the_pipeline_stack_creates_the_model_package_group(dev: Synthesized) -> None:
    dev.template(dev.stacks.pipeline).has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "taxi-anomaly-dev"}
    )


def test_the_notifier_knows_the_queues_max_receive_count_and_the_dlq_is_alarmed(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.approval)
    # The notifier gives up (failing the step with a reason) on the delivery that reaches maxReceiveCount
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "approval_notifier.handler.lambda_handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"APPROVAL_MAX_RECEIVE_COUNT": str(dev.config.approval.dlq_max_receive_count)}
                )
            },
        },
    )
    # What still cannot be processed lands in the DLQ, and that DLQ has an alarm on its visible messages
    queues = template.find_resources("AWS::SQS::Queue")
    (dlq_arn,) = [
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        for queue in queues.values()
        if "RedrivePolicy" in queue["Properties"]
    ]
    dlq_id = dlq_arn["Fn::GetAtt"][0]
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    (alarm,) = [
        alarm["Properties"]
        for alarm in alarms.values()
        if alarm["Properties"].get("AlarmName") == f"taxi-anomaly-{dev.config.name}-approval-dead-letters"
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
