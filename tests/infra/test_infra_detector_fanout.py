"""The detector's fan-out (detector_partitions = 4): the schedule starts a Standard state machine that maps over the
partitions (MaxConcurrency 4) then forms the groups; least privilege, logging, tracing, an alarm; gates clean."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template
from infra_synth import Synthesized, environment, role_grants
from test_infra_gates import _lint, nag_findings

from cdk_constructs.anomaly_detector import SCORES_PREFIX
from cdk_constructs.detector_fanout import SERVICE_ERRORS

FANOUT = "anomaly_detector.fanout_handler.lambda_handler"


@cache
def fanout_variant() -> Synthesized:
    config = environment("dev")
    outdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cdk-test-{os.getpid()}-dev-fanout"
    return Synthesized(replace(config, streaming=replace(config.streaming, detector_partitions=4)), outdir)


def _template() -> Template:
    variant = fanout_variant()
    return variant.template(variant.stacks.streaming)


def _definition(template: Template) -> dict[str, Any]:
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(part if isinstance(part, str) else '"ARN"' for part in parts).replace('""ARN""', '"ARN"'))


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical: resource["Properties"]
        for logical, resource in template.find_resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == FANOUT
    }


def test_the_state_machine_resolves_the_interval_maps_over_4_partitions_then_forms_the_groups() -> None:
    template = _template()
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )
    definition = _definition(template)
    assert definition["StartAt"] == "ResolveInterval"
    states = definition["States"]
    assert states["ResolveInterval"]["Next"] == "ScorePartitions"
    mapped = states["ScorePartitions"]
    assert (mapped["Type"], mapped["MaxConcurrency"], mapped["ItemsPath"]) == ("Map", 4, "$.run.partition_list")
    assert mapped["ItemSelector"]["partition.$"] == "$$.Map.Item.Value" and mapped["Next"] == "FormGroups"
    assert states["FormGroups"]["Parameters"]["form_groups"] is True and states["FormGroups"]["End"]
    for task in (states["ResolveInterval"], mapped["ItemProcessor"]["States"]["ScorePartition"], states["FormGroups"]):
        [retry] = task["Retry"]
        assert set(retry["ErrorEquals"]) == set(SERVICE_ERRORS)
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= set(retry["ErrorEquals"])


def test_the_partition_scorer_runs_unreserved_and_the_group_former_one_at_a_time() -> None:
    functions = _functions(_template())
    assert len(functions) == 2
    reserved = sorted(str(props.get("ReservedConcurrentExecutions")) for props in functions.values())
    assert reserved == ["1", "None"]
    for props in functions.values():
        variables = props["Environment"]["Variables"]
        assert (variables["PARTITIONS"], variables["SCORES_PREFIX"]) == ("4", SCORES_PREFIX)


def test_the_schedule_starts_the_state_machine_and_only_it() -> None:
    template = _template()
    [rule] = [
        r
        for r in template.find_resources("AWS::Events::Rule").values()
        if "Scores each closed" in r["Properties"].get("Description", "")
    ]
    [target] = rule["Properties"]["Targets"]
    assert "StateMachine" in json.dumps(target["Arn"]) and "RoleArn" in target
    starts = {
        (a, r) for a, r in role_grants(template, "DetectorFanoutStateMachineEventsRole") if a.startswith("states:")
    }
    assert len(starts) == 1 and next(iter(starts))[0] == "states:StartExecution"
    assert "Fanout" in next(iter(starts))[1]


def test_the_state_machine_invokes_only_the_two_detector_functions() -> None:
    grants = {(a, r) for a, r in role_grants(_template(), "DetectorFanoutStateMachineRole9") if a.startswith("lambda:")}
    assert grants and {action for action, _ in grants} == {"lambda:InvokeFunction"}
    assert all(
        "Detector" in resource
        and ("PartitionScorer" in resource or "DetectorFunction" in resource or "Detector" in resource)
        for _, resource in grants
    )
    assert not any(resource == '"*"' for _, resource in grants)


def test_the_partition_scorer_writes_only_its_prefixes_and_cannot_alert() -> None:
    grants = role_grants(_template(), "DetectorPartitionScorerRole")
    writes = {resource for action, resource in grants if action == "s3:PutObject"}
    assert any(f"/{SCORES_PREFIX}*" in r for r in writes) and not any("/metrics/anomalies/" in r for r in writes)
    assert not any(action.startswith(("sns:", "cloudwatch:")) for action, _ in grants)


def test_failed_executions_are_alarmed_on() -> None:
    _template().has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ExecutionsFailed", "Namespace": "AWS/States", "Threshold": 0},
    )


def test_a_single_partition_keeps_todays_detector(dev: Synthesized) -> None:
    template = dev.template(dev.stacks.streaming)
    template.resource_count_is("AWS::StepFunctions::StateMachine", 0)
    assert _functions(template) == {}


def test_the_fanout_variant_passes_cdk_nag_and_cfn_lint() -> None:
    variant = fanout_variant()
    assert nag_findings(variant, "error") == []
    assert nag_findings(variant, "warning") == []
    template = Path(variant.assembly.directory) / variant.stacks.streaming.template_file
    assert _lint(template) == []
