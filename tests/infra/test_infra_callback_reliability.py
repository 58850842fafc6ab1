"""Issue 11 infrastructure: token table, reconciler, failure destinations, scoped IAM, trust and source conditions."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match
from infra_synth import Synthesized, logical_id, role_statements

CALLBACK_ACTIONS = {"sagemaker:SendPipelineExecutionStepSuccess", "sagemaker:SendPipelineExecutionStepFailure"}


def _all_templates(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {stack.stack_name: synth.template(stack).to_json() for stack in synth.all_stacks()}


def test_token_table_is_on_demand_encrypted_with_ttl_and_an_open_steps_index(dev: Synthesized) -> None:
    # Given the storage stack (the table is stateful, so it lives there)
    template = dev.template(dev.stacks.storage)
    # Then the table is on-demand, KMS-encrypted, expires records and indexes the open ones
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "token", "KeyType": "HASH"}],
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "GlobalSecondaryIndexes": [
                Match.object_like({"IndexName": "open-steps", "Projection": {"ProjectionType": "KEYS_ONLY"}})
            ],
        },
    )


def test_token_table_has_point_in_time_recovery_and_is_kept_in_prod(prod: Synthesized, dev: Synthesized) -> None:
    prod_table = next(iter(prod.template(prod.stacks.storage).find_resources("AWS::DynamoDB::Table").values()))
    assert prod_table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert prod_table["Properties"]["DeletionProtectionEnabled"] is True
    assert prod_table["DeletionPolicy"] == "Retain"
    dev_table = next(iter(dev.template(dev.stacks.storage).find_resources("AWS::DynamoDB::Table").values()))
    assert dev_table["DeletionPolicy"] == "Delete"


def test_every_queue_feeding_a_consumer_redrives_after_at_least_five_receives(every_variant: Synthesized) -> None:
    # AWS: "set the maxReceiveCount on the source queue's redrive policy to at least 5" (Lambda + SQS).
    redrives = []
    for template in _all_templates(every_variant).values():
        for queue_id, queue in template["Resources"].items():
            if queue["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in queue["Properties"]:
                redrives.append((queue_id, queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]))
    assert redrives
    assert all(count >= 5 for _, count in redrives), redrives


def test_handler_batches_fit_in_one_invocation(every_variant: Synthesized) -> None:
    template = every_variant.template(every_variant.stacks.data_prep)
    prep = every_variant.config.data_prep
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": prep.handler_batch_size, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    assert prep.handler_batch_size * 20 <= prep.handler_timeout_seconds


def test_callback_actions_are_scoped_to_this_pipelines_executions(every_variant: Synthesized) -> None:
    # Given every statement that grants a SageMaker callback action, in every stack
    pattern = f"pipeline/{every_variant.config.pipeline_name}/execution/*"
    found = 0
    for template in _all_templates(every_variant).values():
        for policy in template["Resources"].values():
            if policy["Type"] != "AWS::IAM::Policy":
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])
                if actions & CALLBACK_ACTIONS:
                    found += 1
                    # Then the resource is this environment's pipeline executions, never "*"
                    assert statement["Resource"] != "*"
                    assert pattern in json.dumps(statement["Resource"]), statement
    assert found >= 3


def test_watchdog_and_completion_send_failed_invocations_to_an_alarmed_queue(
    dev: Synthesized, dev_events: Synthesized
) -> None:
    for synth, function in ((dev, "TaskWatchdog"), (dev_events, "GlueCompletion")):
        template = synth.template(synth.stacks.data_prep)
        queue_id = logical_id(template, "AWS::SQS::Queue", "AlarmsCallbackEventFailures")
        function_id = logical_id(template, "AWS::Lambda::Function", f"{function}Function")
        template.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig",
            {
                "FunctionName": {"Ref": function_id},
                "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
            },
        )
        alarms = template.find_resources("AWS::CloudWatch::Alarm")
        assert any(
            a["Properties"]["AlarmName"].endswith("callback-event-handling-failed")
            and queue_id in json.dumps(a["Properties"]["Dimensions"])
            for a in alarms.values()
        )


def test_reconciler_runs_on_a_schedule_and_alarms_on_steps_waiting_too_long(every_variant: Synthesized) -> None:
    template = every_variant.template(every_variant.stacks.data_prep)
    prep = every_variant.config.data_prep
    function_id = logical_id(template, "AWS::Lambda::Function", "ReconcilerFunction")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": f"rate({prep.reconcile_every_minutes} minutes)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function_id, "Arn"]}})],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"taxi-anomaly-{every_variant.config.name}-callback-step-waiting-too-long",
            "MetricName": "OverdueCallbackSteps",
            "Namespace": "TaxiAnomaly/Callbacks",
        },
    )
    function = template.find_resources("AWS::Lambda::Function")[function_id]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["ALARM_AFTER_SECONDS"] == str(prep.callback_alarm_minutes * 60)
    assert variables["CALLBACK_DEADLINE_SECONDS"] == str(prep.callback_deadline_minutes * 60)


def _trust(template: dict[str, Any], service: str) -> list[dict[str, Any]]:
    statements = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            if statement.get("Principal", {}).get("Service") == service:
                statements.append(statement)
    return statements


def test_service_role_trust_policies_carry_the_documented_confused_deputy_conditions(prod: Synthesized) -> None:
    data_prep = prod.template(prod.stacks.data_prep).to_json()
    pipeline = prod.template(prod.stacks.pipeline).to_json()
    ecs_trust = _trust(data_prep, "ecs-tasks.amazonaws.com")
    assert len(ecs_trust) == 2  # task role and execution role
    for statement in ecs_trust:
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
        assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:ecs:us-east-1:123456789012:*"}
    (flow_logs,) = _trust(data_prep, "vpc-flow-logs.amazonaws.com")
    assert "vpc-flow-log/*" in flow_logs["Condition"]["ArnLike"]["aws:SourceArn"]
    for service in ("sagemaker.amazonaws.com", "scheduler.amazonaws.com"):
        (statement,) = _trust(pipeline, service)
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


def test_topic_and_key_let_only_this_accounts_alarms_and_rules_publish(every_variant: Synthesized) -> None:
    template = every_variant.template(every_variant.stacks.operations).to_json()
    policies = [r for r in template["Resources"].values() if r["Type"] in ("AWS::SNS::TopicPolicy", "AWS::KMS::Key")]
    service_statements = []
    for resource in policies:
        document = (
            resource["Properties"].get("PolicyDocuments", [None])[0]
            or resource["Properties"].get("PolicyDocument")
            or resource["Properties"].get("KeyPolicy")
        )
        for statement in document["Statement"]:
            if "Service" in statement.get("Principal", {}):
                service_statements.append(statement)
    assert {s["Principal"]["Service"] for s in service_statements} == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
    }
    for statement in service_statements:
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
        assert "aws:SourceArn" in statement["Condition"]["ArnLike"]
    events = [s for s in service_statements if s["Principal"]["Service"] == "events.amazonaws.com"]
    assert all(f"rule/taxi-anomaly-{every_variant.config.name}-" in json.dumps(s["Condition"]) for s in events)


def test_every_lambda_function_in_every_stack_logs_to_a_group_with_retention(every_variant: Synthesized) -> None:
    for stack_name, template in _all_templates(every_variant).items():
        resources = template["Resources"]
        for function_id, function in resources.items():
            if function["Type"] != "AWS::Lambda::Function":
                continue
            group = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert group is not None, f"{stack_name}/{function_id} logs to a group with no retention"
            group_id = group["Ref"]
            assert resources[group_id]["Properties"]["RetentionInDays"] == every_variant.config.log_retention_days
            if every_variant.config.destroy_data_with_stack:
                assert resources[group_id]["DeletionPolicy"] == "Delete", f"{stack_name}/{group_id}"


def test_kept_buckets_expire_noncurrent_versions(prod: Synthesized) -> None:
    buckets = prod.template(prod.stacks.storage).find_resources("AWS::S3::Bucket")
    versioned = [b for b in buckets.values() if b["Properties"].get("VersioningConfiguration")]
    assert versioned
    for bucket in versioned:
        rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in rule or "ExpirationInDays" in rule for rule in rules)


def test_handler_may_list_tasks_only_in_its_cluster_and_statements_have_no_star_callbacks(dev: Synthesized) -> None:
    statements = role_statements(dev.template(dev.stacks.data_prep), "CallbackHandlerRole")
    list_tasks = next(s for s in statements if s["Action"] == "ecs:ListTasks")
    assert "ecs:cluster" in list_tasks["Condition"]["ArnEquals"]


def test_the_local_token_table_has_the_deployed_tables_shape(dev: Synthesized) -> None:
    # The local mode and the tests create the table themselves (local_mode/token_table.py): same keys and index.
    from local_mode.token_table import KEY_SCHEMA, OPEN_INDEX

    table = next(iter(dev.template(dev.stacks.storage).find_resources("AWS::DynamoDB::Table").values()))
    assert table["Properties"]["KeySchema"] == KEY_SCHEMA
    (index,) = table["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == OPEN_INDEX["IndexName"]
    assert index["KeySchema"] == OPEN_INDEX["KeySchema"]
    assert index["Projection"] == OPEN_INDEX["Projection"]
