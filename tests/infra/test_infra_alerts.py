"""Alert targets in CDK: the threshold and feedback prefix reach the detector, and a Lambda target is invocable
only when configured, and only that exact function."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cache
from pathlib import Path

from aws_cdk.assertions import Match, Template
from infra_synth import Synthesized, environment, role_grants
from test_infra_gates import _lint, nag_findings

ALERT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:on-anomaly-group"


@cache
def lambda_target_variant() -> Synthesized:
    """dev with an alert Lambda and a higher threshold."""
    config = environment("dev")
    streaming = replace(config.streaming, alert_lambda_arn=ALERT_FUNCTION_ARN, alert_min_severity=85.0)
    outdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cdk-test-{os.getpid()}-dev-alert-lambda"
    return Synthesized(replace(config, streaming=streaming), outdir)


def _detector_environment(template: Template) -> dict[str, object]:
    for function in template.find_resources("AWS::Lambda::Function").values():
        properties = function["Properties"]
        if properties.get("Handler") == "anomaly_detector.handler.lambda_handler":
            return dict(properties["Environment"]["Variables"])
    raise AssertionError("no detector function")


def _invoke_grants(template: Template) -> set[str]:
    return {resource for action, resource in role_grants(template, "DetectorRole") if action.startswith("lambda:")}


def test_by_default_the_detector_has_the_threshold_and_feedback_prefix_but_no_lambda_target(dev: Synthesized) -> None:
    variables = _detector_environment(dev.template(dev.stacks.streaming))
    assert variables["ALERT_MIN_SEVERITY"] == "70.0"
    assert variables["FEEDBACK_PREFIX"] == "metrics/feedback/"
    assert "ALERT_LAMBDA_ARN" not in variables
    assert _invoke_grants(dev.template(dev.stacks.streaming)) == set()


def test_a_configured_lambda_target_is_invocable_exactly_and_only_it() -> None:
    variant = lambda_target_variant()
    template = variant.template(variant.stacks.streaming)
    variables = _detector_environment(template)
    assert (variables["ALERT_LAMBDA_ARN"], variables["ALERT_MIN_SEVERITY"]) == (ALERT_FUNCTION_ARN, "85.0")
    grants = {(a, r) for a, r in role_grants(template, "DetectorRole") if a.startswith("lambda:")}
    assert grants == {("lambda:InvokeFunction", json.dumps(ALERT_FUNCTION_ARN))}


def test_the_detector_reads_feedback_labels_but_cannot_write_them(dev: Synthesized) -> None:
    grants = role_grants(dev.template(dev.stacks.streaming), "DetectorRole")
    on_feedback = {action for action, resource in grants if "/metrics/feedback/" in resource}
    assert on_feedback == {"s3:GetObject"}
    dev.template(dev.stacks.streaming).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:ListBucket",
                                "Condition": {"StringLike": {"s3:prefix": ["metrics/feedback/", "metrics/feedback/*"]}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_the_lambda_target_variant_passes_cdk_nag_and_cfn_lint() -> None:
    variant = lambda_target_variant()
    assert nag_findings(variant, "error") == []
    assert nag_findings(variant, "warning") == []
    template = Path(variant.assembly.directory) / variant.stacks.streaming.template_file
    assert _lint(template) == []
