"""Independent checkers on every synthesized template (dev, prod, events mode): checkov, cfn-lint serverless rules.

checkov runs once for all templates together (offline: --skip-download), from its own virtualenv
(.venv-checkov, created by `make install`; see requirements-checkov.txt). A deliberately bad template
runs alongside them, so a checkov that silently checks nothing fails the tests. Every finding is fixed
or skipped in the resource's metadata with a written reason (cdk_constructs/checker_skips.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from infra_synth import REPO_ROOT, Synthesized

CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))
CANARY = "canary-bad.template.json"
# An unencrypted queue and a public-read bucket: checkov must find both.
CANARY_TEMPLATE = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"AccessControl": "PublicRead"}},
    }
}
MIN_REASON_CHARS = 40
# Checks run as our own assertions instead, each with why. CKV2_AWS_75 ("no open CORS policy" on a Lambda
# function URL): checkov 3.3.30 crashes writing its JSON report for this graph check on a function with a URL
# (its result's connected_node is keyed by a tuple), which hides every other finding. The approval page's URL
# has no CORS configuration at all: tests/infra/test_infra_approval.py asserts that, which is stricter.
CHECKS_ASSERTED_ELSEWHERE = ("CKV2_AWS_75",)


def variant_templates(synth: Synthesized) -> list[Path]:
    return sorted(Path(synth.assembly.directory).glob("*.template.json"))


@pytest.fixture(scope="session")
def all_templates(dev: Synthesized, prod: Synthesized, dev_events: Synthesized) -> dict[str, Path]:
    templates = {}
    for name, synth in (("dev", dev), ("prod", prod), ("dev-events", dev_events)):
        paths = variant_templates(synth)
        assert len(paths) == len(synth.all_stacks())
        templates.update({f"{name}-{path.name}": path for path in paths})
    return templates


@pytest.fixture(scope="session")
def checkov_results(all_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report for every template plus the canary, from one run."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}; run `make install` (it creates .venv-checkov)")
    folder = tmp_path_factory.mktemp("checkov")
    for name, path in all_templates.items():
        shutil.copyfile(path, folder / name)
    (folder / CANARY).write_text(json.dumps(CANARY_TEMPLATE))
    completed = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "--output",
            "json",
            "--skip-check",
            ",".join(CHECKS_ASSERTED_ELSEWHERE),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    # Exit code 1 means "findings" (the canary has some); anything else is checkov failing.
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for r in reports for check in r["results"].get("failed_checks", [])]
    passed = sum(int(r["summary"]["passed"]) for r in reports)
    skipped = [check for r in reports for check in r["results"].get("skipped_checks", [])]
    return {"failed": failed, "passed": passed, "skipped": skipped}


def _describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} {check['resource']} in {Path(check['file_path']).name}: {check['check_name']}"


def test_checkov_finds_nothing_unaccepted_in_our_templates(checkov_results: dict[str, Any]) -> None:
    # Given checkov's report over every template of dev, prod and the events-mode variant
    ours = [c for c in checkov_results["failed"] if Path(c["file_path"]).name != CANARY]
    # Then every finding was fixed or skipped with a reason
    assert [_describe(check) for check in ours] == []


def test_checkov_really_checked_the_templates(checkov_results: dict[str, Any]) -> None:
    # Guard against a run that checks nothing: the canary's faults are found, and our templates pass many checks
    canary = {c["check_id"] for c in checkov_results["failed"] if Path(c["file_path"]).name == CANARY}
    assert {"CKV_AWS_27", "CKV_AWS_20"} <= canary
    assert checkov_results["passed"] > 200


def test_every_checkov_skip_it_honoured_has_a_reason(checkov_results: dict[str, Any]) -> None:
    assert checkov_results["skipped"]
    for check in checkov_results["skipped"]:
        assert len(check.get("check_result", {}).get("suppress_comment", "")) >= MIN_REASON_CHARS, _describe(check)


def _metadata_skips(template_path: Path) -> list[tuple[str, str, str, str]]:
    """(resource, checker, rule, reason) for every skip in the template's metadata."""
    skips = []
    for logical_id, resource in json.loads(template_path.read_text())["Resources"].items():
        metadata = resource.get("Metadata", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            skips.append((logical_id, "checkov", skip["id"], skip.get("comment", "")))
        cfn_lint = metadata.get("cfn-lint", {})
        for rule in cfn_lint.get("config", {}).get("ignore_checks", []):
            skips.append((logical_id, "cfn-lint", rule, cfn_lint.get("reasons", {}).get(rule, "")))
    return skips


def test_every_metadata_skip_has_a_written_reason(all_templates: dict[str, Path]) -> None:
    skips = [skip for path in all_templates.values() for skip in _metadata_skips(path)]
    assert {checker for _, checker, _, _ in skips} == {"checkov", "cfn-lint"}
    for logical_id, checker, rule, reason in skips:
        assert len(reason) >= MIN_REASON_CHARS, f"{logical_id} skips {checker} {rule} without a real reason"


@cache
def cfn_lint_matches(template_path: Path) -> tuple[tuple[str, str], ...]:
    """cfn-lint with AWS's serverless rules appended, run once per template for every test that needs it."""
    matches = lint(
        template_path.read_text(), config=ManualArgs(append_rules=["cfn_lint_serverless.rules"], regions=["us-east-1"])
    )
    return tuple((m.rule.id, f"{m.rule.id} {m.message} ({template_path.name})") for m in matches)


def is_serverless_rule(rule_id: str) -> bool:
    # cfn-lint-serverless rules are E/W/I + "S" + digits (ES6000, WS1004, ...).
    return len(rule_id) > 2 and rule_id[1] == "S" and rule_id[2:].isdigit()


def test_cfn_lint_serverless_rules_find_nothing_unaccepted(all_templates: dict[str, Path]) -> None:
    findings = [
        text for path in all_templates.values() for rule, text in cfn_lint_matches(path) if is_serverless_rule(rule)
    ]
    assert findings == []


def test_cfn_lint_serverless_rules_are_loaded(tmp_path: Path) -> None:
    # Guard against a plugin that silently does not load: a function without tracing is reported.
    template = tmp_path / "function.template.json"
    template.write_text(
        json.dumps(
            {
                "Resources": {
                    "Function": {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Runtime": "python3.13",
                            "Handler": "index.handler",
                            "Role": "arn:aws:iam::123456789012:role/r",
                            "Code": {"ZipFile": "def handler(e, c): pass"},
                        },
                    }
                }
            }
        )
    )
    assert "WS1000" in {rule for rule, _ in cfn_lint_matches(template)}
