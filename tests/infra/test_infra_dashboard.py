"""The streaming dashboard: one per environment, with a generated name, a widget per configured measure, the
anomaly groups, the detector's and the streaming job's health, and every streaming alarm."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from constructs import Construct
from infra_synth import Synthesized

from cdk_constructs.anomaly_detector import METRIC_NAMESPACE
from cdk_constructs.streaming_dashboard import DETECTOR_HEALTH_METRICS, GLUE_CONSUMER_LAG_METRIC
from cdk_constructs.streaming_job_supervisor import SUPERVISOR_NAMESPACE


def _resolved(value: Any) -> str:
    """An Fn::Join'ed dashboard body as text, each token replaced by a readable ${Ref:...}/${GetAtt:...}."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolved(part) for part in parts)
    if "Ref" in value:
        return f"${{Ref:{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return f"${{GetAtt:{'.'.join(value['Fn::GetAtt'])}}}"
    raise AssertionError(f"unexpected token in the dashboard body: {value}")


def _dashboard(synth: Synthesized) -> tuple[Template, dict[str, Any], dict[str, Any]]:
    template = synth.template(synth.stacks.streaming)
    (resource,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    return template, resource["Properties"], json.loads(_resolved(resource["Properties"]["DashboardBody"]))


def _metric_rows(body: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """Every metric row of every graph widget, with its widget's title."""
    return [
        (row, widget["properties"].get("title", ""))
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"].get("metrics", [])
    ]


def _logical_id(stack: cdk.Stack, construct: Construct) -> str:
    element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    assert isinstance(element, cdk.CfnElement)
    return str(stack.resolve(stack.get_logical_id(element)))


def _plain(row: list[Any]) -> list[Any]:
    return [part for part in row if not isinstance(part, dict)]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_each_environment_has_one_dashboard_with_a_generated_name(variant: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(variant)
    template, properties, body = _dashboard(synth)

    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    assert "DashboardName" not in properties
    assert body["widgets"] and all(
        widget["x"] >= 0 and widget["x"] + widget["width"] <= 24 for widget in body["widgets"]
    )


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_configured_measure_has_its_total_and_groups_by_its_measure_dimension(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synth: Synthesized = request.getfixturevalue(variant)
    _, _, body = _dashboard(synth)
    rows = [_plain(row) for row, _ in _metric_rows(body)]

    for measure in synth.config.streaming.measures:
        # A widget of its own for the total, titled after the measure
        (widget,) = [
            widget
            for widget in body["widgets"]
            if widget["type"] == "metric"
            and [METRIC_NAMESPACE, "MeasureTotal", "Measure", measure.name]
            in [_plain(row) for row in widget["properties"].get("metrics", [])]
        ]
        assert widget["properties"]["title"].startswith(f"{measure.name} ({measure.aggregation})")
        for name in ("AnomalyGroups", "MaxGroupSeverity"):
            assert [METRIC_NAMESPACE, name, "Measure", measure.name] in rows
    for name in ("AnomalyGroups", "NewAnomalyGroups", "MaxGroupSeverity"):
        assert [METRIC_NAMESPACE, name] in rows
    measures = {row[3] for row in rows if len(row) == 4 and row[1] == "MeasureTotal"}
    assert measures == {measure.name for measure in synth.config.streaming.measures}


def test_the_detector_and_the_streaming_job_health_widgets_watch_the_deployed_resources(dev: Synthesized) -> None:
    template, _, body = _dashboard(dev)
    rows = [_plain(row) for row, _ in _metric_rows(body)]
    stack = dev.stacks.streaming
    detector = _logical_id(stack, stack.detector.function.function)
    supervisor = _logical_id(stack, stack.supervisor.function.function)
    job = _logical_id(stack, stack.etl_job.job)

    # The detector's Lambda: runs, errors, duration, throttles
    for name in ("Invocations", "Errors", "Duration", "Throttles"):
        assert ["AWS/Lambda", name, "FunctionName", f"${{Ref:{detector}}}"] in rows, name
    # The detector's own health figures
    for name in DETECTOR_HEALTH_METRICS:
        assert [METRIC_NAMESPACE, name] in rows, name
    # The streaming job: the supervisor's metrics for this job, its Lambda, Glue's consumer lag for this job
    for name in ("JobDesired", "JobDown", "UnexpectedRunEnd", "GaveUp"):
        assert [SUPERVISOR_NAMESPACE, name, "JobName", f"${{Ref:{job}}}"] in rows, name
    assert ["AWS/Lambda", "Errors", "FunctionName", f"${{Ref:{supervisor}}}"] in rows
    expressions = [
        part["expression"]
        for row, _ in _metric_rows(body)
        for part in row
        if isinstance(part, dict) and "expression" in part
    ]
    assert any(GLUE_CONSUMER_LAG_METRIC in text and f"${{Ref:{job}}}" in text for text in expressions)
    # Every namespace the body reads is one something in this app publishes to
    assert {row[0] for row in rows if row} == {METRIC_NAMESPACE, SUPERVISOR_NAMESPACE, "AWS/Lambda"}
    assert template.find_resources("AWS::Lambda::Function")[detector]


def test_every_streaming_alarm_has_an_alarm_widget_and_a_status_line(dev: Synthesized) -> None:
    template, _, body = _dashboard(dev)
    alarms = {f"${{GetAtt:{alarm}.Arn}}" for alarm in template.find_resources("AWS::CloudWatch::Alarm")}
    widgets = [widget for widget in body["widgets"] if widget["type"] == "metric"]

    alarm_widgets = {
        alarm for widget in widgets for alarm in widget["properties"].get("annotations", {}).get("alarms", [])
    }
    (status,) = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    assert len(alarms) >= 8
    assert alarm_widgets == alarms
    assert set(status["properties"]["alarms"]) == alarms
