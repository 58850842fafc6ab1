"""Gates every synthesized template must pass: cdk-nag AwsSolutions and cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Annotations, Match
from infra_synth import Synthesized
from test_infra_checkers import cfn_lint_matches, is_serverless_rule


def nag_findings(synth: Synthesized, level: str) -> list[str]:
    findings = []
    for stack in synth.all_stacks():
        annotations = Annotations.from_stack(stack)
        finder = annotations.find_error if level == "error" else annotations.find_warning
        for message in finder("*", Match.string_like_regexp(r"AwsSolutions-.*")):
            findings.append(f"{message.id}: {str(message.entry.data)[:200]}")
    return findings


def test_no_unsuppressed_cdk_nag_errors(every_variant: Synthesized) -> None:
    # Given every environment variant synthesized with AwsSolutionsChecks
    # Then no AwsSolutions rule reports an error that is not suppressed with a reason
    assert nag_findings(every_variant, "error") == []


def test_no_unsuppressed_cdk_nag_warnings(every_variant: Synthesized) -> None:
    assert nag_findings(every_variant, "warning") == []


def test_every_suppression_has_a_written_reason(every_variant: Synthesized) -> None:
    # Given the suppressions cdk-nag recorded in the templates' metadata
    suppressions = []
    for stack in every_variant.all_stacks():
        template = every_variant.template(stack).to_json()
        for logical_id, resource in template["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                suppressions.append((logical_id, rule["id"], rule.get("reason", "")))
    # Then there are some, and each explains itself in a sentence
    assert suppressions
    for logical_id, rule_id, reason in suppressions:
        assert len(reason) >= 40, f"{logical_id} suppresses {rule_id} without a real reason: {reason!r}"


def _lint(template_path: Path) -> list[str]:
    # One cfn-lint pass per template serves this gate and the serverless-rules gate (test_infra_checkers).
    return [
        text for rule, text in cfn_lint_matches(template_path) if rule.startswith("E") and not is_serverless_rule(rule)
    ]


def test_cfn_lint_reports_no_errors(every_variant: Synthesized) -> None:
    # Given every synthesized template of the variant
    outdir = Path(every_variant.assembly.directory)
    templates = sorted(outdir.glob("*.template.json"))
    assert len(templates) == len(every_variant.all_stacks())
    # Then cfn-lint finds no errors (warnings are advice, errors would fail a deploy)
    errors = [error for template in templates for error in _lint(template)]
    assert errors == []


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    # Guard against a lint call that silently checks nothing
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}}))
    assert _lint(broken)
