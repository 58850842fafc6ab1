"""Pipeline stack: the registered SageMaker pipeline, its role and its wiring to the other stacks."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match
from infra_synth import Synthesized, role_actions, role_grants, role_statements


def _pipeline(synth: Synthesized) -> dict:
    pipelines = synth.template(synth.stacks.pipeline).find_resources("AWS::SageMaker::Pipeline")
    assert len(pipelines) == 1
    return next(iter(pipelines.values()))["Properties"]


def test_pipeline_is_named_for_the_environment_and_runs_as_its_role(dev: Synthesized) -> None:
    props = _pipeline(dev)
    assert props["PipelineName"] == "taxi-anomaly-dev"
    assert props["RoleArn"]["Fn::GetAtt"][1] == "Arn"
    assert "ExecutionRole" in props["RoleArn"]["Fn::GetAtt"][0]


def test_definition_references_enter_as_cloudformation_references(dev: Synthesized) -> None:
    body, variables = _pipeline(dev)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    definition = json.loads(body)
    assert [step["Name"] for step in definition["Steps"]] == [
        "PrepareData",
        "TrainModel",
        "CreateModel",
        "ScoreData",
        "Evaluate",
        "ApproveResults",
        "Register",
    ]
    # Every placeholder is bound to a reference (or, for the asset's key, its synth-time name), never a guess.
    assert set(variables) == {
        "PipelineRoleArn",
        "CallbackQueueUrl",
        "RawBucket",
        "PreparedBucket",
        "ArtifactsBucket",
        "ApprovalQueueUrl",
        "EvaluationCodeBucket",
        "EvaluationCodeKey",
        "EvaluationCodeFile",
        "ModelPackageGroupName",
    }
    assert "Fn::ImportValue" in json.dumps(variables["ApprovalQueueUrl"])  # from the approval stack
    assert (
        variables["EvaluationCodeKey"].endswith(".zip")
        and variables["EvaluationCodeFile"] == variables["EvaluationCodeKey"].rsplit("/", 1)[-1]
    )
    assert "Fn::ImportValue" in json.dumps(variables["CallbackQueueUrl"])  # from the data-prep stack
    assert "Fn::ImportValue" in json.dumps(variables["RawBucket"])  # from the storage stack
    assert "Fn::GetAtt" in json.dumps(variables["PipelineRoleArn"])
    for name in variables:
        assert f"${{{name}}}" in body


def test_definition_uses_this_regions_rcf_image(dev: Synthesized) -> None:
    body = _pipeline(dev)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    assert f".dkr.ecr.{dev.config.region}.amazonaws.com/randomcutforest:1" in body


def test_execution_role_has_exactly_what_the_steps_need(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.pipeline)
    assert role_actions(template, "TaxiAnomalyPipelineExecutionRole") == {
        "sqs:SendMessage",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:AddTags",
        "iam:PassRole",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "cloudwatch:PutMetricData",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetAuthorizationToken",
        # Evaluate, ApproveResults and Register
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackage",
        "s3:GetBucket*",
        "s3:GetObject*",
        "s3:List*",
    }
    grants = role_grants(template, "TaxiAnomalyPipelineExecutionRole")
    send = sorted(resource for action, resource in grants if action == "sqs:SendMessage")
    assert len(send) == 2 and "ApprovalQueue" in send[0] and "CallbackQueue" in send[1]
    # Writes go to the artifacts prefix only; the prepared data is read-only.
    writes = {resource for action, resource in grants if action == "s3:PutObject"}
    assert (
        len(writes) == 1 and "BucketsArtifacts" in next(iter(writes)) and "/pipeline-executions/*" in next(iter(writes))
    )
    pass_role = next(
        s for s in role_statements(template, "TaxiAnomalyPipelineExecutionRole") if s["Action"] == "iam:PassRole"
    )
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert "ExecutionRole" in json.dumps(pass_role["Resource"])


def test_prod_role_may_use_the_queue_key(prod: Synthesized) -> None:
    grants = role_grants(prod.template(prod.stacks.pipeline), "TaxiAnomalyPipelineExecutionRole")
    assert {a for a, r in grants if "CallbackQueueKey" in r} == {"kms:GenerateDataKey", "kms:Decrypt"}


def test_schedule_is_off_in_dev_and_on_in_prod(dev: Synthesized, prod: Synthesized) -> None:
    assert dev.template(dev.stacks.pipeline).find_resources("AWS::Scheduler::Schedule") == {}
    prod.template(prod.stacks.pipeline).has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": prod.config.pipeline.schedule,
            "Target": Match.object_like({"Arn": Match.any_value(), "SageMakerPipelineParameters": Match.any_value()}),
        },
    )
    assert role_actions(prod.template(prod.stacks.pipeline), "TaxiAnomalyPipelineScheduleRole") == {
        "sagemaker:StartPipelineExecution"
    }


def test_pipeline_name_is_a_stack_output_for_the_cli(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.pipeline)
    pipeline_id = next(iter(template.find_resources("AWS::SageMaker::Pipeline")))
    outputs = template.find_outputs("PipelineName")
    assert outputs["PipelineName"]["Value"] == {"Ref": pipeline_id}
