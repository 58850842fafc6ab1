"""Data-prep stack: queue -> handler -> Fargate task -> Glue job, and the event-driven variant."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Match
from infra_synth import Synthesized, logical_id, role_actions, role_grants, role_statements

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# The token table (DynamoDB items and its key).
TOKEN_TABLE = {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query",
               "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}


def test_callback_queue_is_encrypted_with_a_dead_letter_queue(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    queues = template.find_resources("AWS::SQS::Queue")
    main_id = logical_id(template, "AWS::SQS::Queue", "CallbackQueue", excluding="DeadLetter")
    dlq_id = logical_id(template, "AWS::SQS::Queue", "CallbackQueueDeadLetterQueue")
    main = queues[main_id]["Properties"]
    assert main["SqsManagedSseEnabled"] is True
    assert main["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": dev.config.data_prep.dlq_max_receive_count,
    }
    # Six times the handler's timeout, so a slow batch is not redelivered while it runs.
    assert main["VisibilityTimeout"] >= 6 * dev.config.data_prep.handler_timeout_seconds


def test_prod_queue_uses_a_customer_key_sagemaker_may_use(prod: Synthesized) -> None:
    template = prod.template(prod.stacks.data_prep)
    main_id = logical_id(template, "AWS::SQS::Queue", "CallbackQueue", excluding="DeadLetter")
    queue = template.find_resources("AWS::SQS::Queue")[main_id]["Properties"]
    key_id = queue["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_policy = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]["Statement"]
    sagemaker = [s for s in key_policy if s.get("Principal") == {"Service": "sagemaker.amazonaws.com"}]
    assert len(sagemaker) == 1
    assert set(sagemaker[0]["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert "aws:SourceAccount" in sagemaker[0]["Condition"]["StringEquals"]


def test_queue_policy_admits_only_our_pipeline_over_tls(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    main_id = logical_id(template, "AWS::SQS::Queue", "CallbackQueue", excluding="DeadLetter")
    main_policy = next(p for p in policies.values() if {"Ref": main_id} in p["Properties"]["Queues"])
    statements = main_policy["Properties"]["PolicyDocument"]["Statement"]
    deny_http = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_http and deny_http[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert allow[0]["Action"] == "sqs:SendMessage"
    conditions = allow[0]["Condition"]
    assert conditions["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    source_arns = conditions["ArnLike"]["aws:SourceArn"]
    assert any("pipeline/taxi-anomaly-dev" in str(arn) for arn in source_arns)


def test_handler_reads_the_queue_with_partial_batch_responses(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    main_id = logical_id(template, "AWS::SQS::Queue", "CallbackQueue", excluding="DeadLetter")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [main_id, "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_handler_runs_python_with_powertools_and_its_environment(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "callback_handler.handler.lambda_handler",
            "Runtime": Match.string_like_regexp(r"python3\.1[2-9]"),
            "Timeout": dev.config.data_prep.handler_timeout_seconds,
            "TracingConfig": {"Mode": "Active"},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "callback_handler",
                        "COMPLETION_MODE": "poll",
                        "GLUE_JOB_NAME": Match.any_value(),
                        "CLUSTER_ARN": Match.any_value(),
                        "TASK_DEFINITION_ARN": Match.any_value(),
                        "CONTAINER_NAME": "FargateTask",
                        "SUBNET_IDS": Match.any_value(),
                        "SECURITY_GROUP_IDS": Match.any_value(),
                        "ASSIGN_PUBLIC_IP": "ENABLED",
                    }
                )
            },
        },
    )


def test_every_function_log_group_has_explicit_retention(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    functions = template.find_resources("AWS::Lambda::Function")
    log_groups = template.find_resources("AWS::Logs::LogGroup")
    for function_id, function in functions.items():
        logging = function["Properties"].get("LoggingConfig")
        assert logging is not None, f"{function_id} logs to a group without retention"
        group_id = logging["LogGroup"]["Ref"]
        assert log_groups[group_id]["Properties"]["RetentionInDays"] == dev.config.log_retention_days, function_id


def test_handler_role_can_run_stop_and_fail_but_nothing_more(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    assert role_actions(template, "CallbackHandlerRole") == {
        "ecs:RunTask",
        "ecs:ListTasks",
        "ecs:StopTask",
        "iam:PassRole",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
        *TOKEN_TABLE,
        "sagemaker:SendPipelineExecutionStepFailure",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        *XRAY,
        *LOGS,
    }
    run_task = next(s for s in role_statements(template, "CallbackHandlerRole") if s["Action"] == "ecs:RunTask")
    assert "ecs:cluster" in run_task["Condition"]["ArnEquals"]
    pass_role = next(s for s in role_statements(template, "CallbackHandlerRole") if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_task_role_is_exactly_glue_on_one_job_and_the_callbacks(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    statements = role_statements(template, "PrepTaskTaskRole")
    glue = next(s for s in statements if "glue:StartJobRun" in s["Action"])
    assert set(glue["Action"]) == {"glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"}
    assert "job/" in str(glue["Resource"]) and "*" not in str(glue["Resource"])
    assert role_actions(template, "PrepTaskTaskRole") == {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
        *TOKEN_TABLE,
        "sagemaker:SendPipelineExecutionStepSuccess",
        "sagemaker:SendPipelineExecutionStepFailure",
    }


def test_fargate_task_image_is_an_asset_built_at_deploy(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": str(dev.config.data_prep.task_cpu),
            "Memory": str(dev.config.data_prep.task_memory_mib),
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Name": "FargateTask",
                        "Image": {"Fn::Sub": Match.string_like_regexp(r"\.dkr\.ecr\..*cdk-hnb659fds-container-assets")},
                        "ReadonlyRootFilesystem": True,
                        "Environment": Match.array_with(
                            [
                                {
                                    "Name": "POLL_INTERVAL_SECONDS",
                                    "Value": str(dev.config.data_prep.poll_interval_seconds),
                                }
                            ]
                        ),
                        "LogConfiguration": Match.object_like({"LogDriver": "awslogs"}),
                    }
                )
            ],
        },
    )
    # The Docker build context is the repo root, narrowed to the two packages the image needs.
    manifest = Path(dev.assembly.directory) / f"{dev.stacks.data_prep.artifact_id}.assets.json"
    images = json.loads(manifest.read_text())["dockerImages"]
    assert [image["source"]["dockerFile"] for image in images.values()] == ["fargate_task/Dockerfile"]
    staged = Path(dev.assembly.directory) / next(iter(images.values()))["source"]["directory"]
    assert sorted(p.name for p in staged.iterdir()) == ["fargate_task", "pipeline_callback"]


def test_default_network_is_public_subnets_without_nat(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    assert template.find_resources("AWS::EC2::NatGateway") == {}
    template.resource_count_is("AWS::EC2::Subnet", 2)
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupEgress": [Match.object_like({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443})]},
    )


def test_glue_job_is_glue_5_with_workers_logging_and_security_configuration(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    prep = dev.config.data_prep
    config_id = logical_id(template, "AWS::Glue::SecurityConfiguration", "GlueSecurity")
    template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "Command": {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": Match.string_like_regexp(r"^s3://")},
            "GlueVersion": "5.0",
            "WorkerType": prep.glue_worker_type,
            "NumberOfWorkers": prep.glue_number_of_workers,
            "SecurityConfiguration": {"Ref": config_id},
            "DefaultArguments": Match.object_like(
                {
                    "--enable-metrics": "true",
                    # The feature module the script imports, shipped next to it
                    "--extra-py-files": Match.string_like_regexp(r"^s3://.*\.zip$"),
                }
            ),
        },
    )
    template.has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": Match.any_value()},
                "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": Match.any_value()},
                "S3Encryptions": [{"S3EncryptionMode": "SSE-S3"}],
            }
        },
    )


def test_glue_role_reads_raw_prefix_and_writes_prepared_prefix_only(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    # Under the prefix, and the bare prefix itself, which Hadoop file systems probe (S3A's three forms of a path)
    object_grants = {
        (a, r)
        for a, r in role_grants(template, "PrepJobRole")
        if a.startswith("s3:") and ("/taxi/*" in r or r.endswith('/taxi"]]}'))
    }
    raw = {a for a, r in object_grants if "BucketsRaw" in r}
    prepared = {a for a, r in object_grants if "BucketsPrepared" in r}
    assert raw == {"s3:GetObject"}
    assert prepared == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    assert {r.endswith('/taxi"]]}') for _, r in object_grants} == {True, False}
    # Outside those prefixes: only the script and its feature module (two asset objects), read-only.
    other_objects = {
        (a, r) for a, r in role_grants(template, "PrepJobRole") if a.startswith("s3:") and a != "s3:ListBucket"
    } - object_grants
    assert {a for a, _ in other_objects} == {"s3:GetObject"}
    assert all("cdk-hnb659fds-assets" in r and r.count("*") == 0 for _, r in other_objects)
    listing = [s for s in role_statements(template, "PrepJobRole") if s["Action"] == "s3:ListBucket"]
    assert listing and all(s["Condition"]["StringLike"]["s3:prefix"] == ["taxi/", "taxi/*", "taxi"] for s in listing)
    assert role_actions(template, "PrepJobRole") == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:AbortMultipartUpload",
        "cloudwatch:PutMetricData",
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:AssociateKmsKey",
    }


def test_watchdog_listens_for_our_stopped_tasks(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {"clusterArn": Match.any_value(), "lastStatus": ["STOPPED"], "group": Match.any_value()},
            },
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})],
        },
    )
    assert role_actions(template, "TaskWatchdogRole") == {
        "sagemaker:SendPipelineExecutionStepSuccess",
        "sagemaker:SendPipelineExecutionStepFailure",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
        *TOKEN_TABLE,
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        *XRAY,
        *LOGS,
    }


def test_alarm_names_say_what_broke(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.data_prep)
    names = {a["Properties"]["AlarmName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert names == {
        "taxi-anomaly-dev-callback-dead-letters",
        "taxi-anomaly-dev-event-target-dead-letters",
        "taxi-anomaly-dev-callback-handler-errors",
        "taxi-anomaly-dev-prep-glue-job-failed",
        "taxi-anomaly-dev-task-watchdog-errors",
        "taxi-anomaly-dev-callback-event-handling-failed",
        "taxi-anomaly-dev-callback-reconciler-errors",
        "taxi-anomaly-dev-callback-step-waiting-too-long",
    }
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"], alarm["Properties"]["AlarmName"]
        assert "OperationsTopic" in json.dumps(alarm["Properties"]["AlarmActions"])
    # The topic lives in the operations stack, encrypted with its own key.
    dev.template(dev.stacks.operations).has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()}
    )


def test_events_mode_has_no_fargate_task_and_reports_from_glue_events(dev_events: Synthesized) -> None:
    template = dev_events.template(dev_events.stacks.data_prep)
    assert template.find_resources("AWS::ECS::TaskDefinition") == {}
    assert template.find_resources("AWS::EC2::VPC") == {}
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": {
                    "jobName": [Match.any_value()],
                    "state": ["ERROR", "EXPIRED", "FAILED", "STOPPED", "SUCCEEDED", "TIMEOUT"],
                },
            },
            "Targets": [Match.object_like({"Arn": Match.any_value()})],
        },
    )
    assert role_actions(template, "CallbackHandlerRole") >= {
        "glue:StartJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
    }
    assert not any(a.startswith("ecs:") for a in role_actions(template, "CallbackHandlerRole"))
    assert role_actions(template, "GlueCompletionRole") == {
        "glue:GetJobRun",
        *TOKEN_TABLE,
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sagemaker:SendPipelineExecutionStepSuccess",
        "sagemaker:SendPipelineExecutionStepFailure",
        *XRAY,
        *LOGS,
    }
