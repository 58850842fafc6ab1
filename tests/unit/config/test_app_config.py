"""Per-environment configuration: parsed once, typed, validated with messages that name the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app_config import ConfigError, load_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]


def test_dev_and_prod_parse_into_typed_config() -> None:
    dev = load_environment(ENVIRONMENTS, "dev")
    prod = load_environment(ENVIRONMENTS, "prod")
    assert dev.destroy_data_with_stack is True and dev.termination_protection is False
    assert prod.destroy_data_with_stack is False and prod.termination_protection is True
    assert dev.data_prep.completion == "poll"
    assert dev.pipeline.num_samples_per_tree == 64
    assert dev.streaming.frequency_minutes in (5, 10)
    assert dev.stack_name("storage") == "taxi-anomaly-dev-storage"
    assert dev.pipeline_name == "taxi-anomaly-dev"


def test_unknown_environment_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'qa'; valid environments: dev, prod"):
        load_environment(ENVIRONMENTS, "qa")


def test_account_and_region_fall_back_to_cdk_defaults() -> None:
    raw = {"x": {**ENVIRONMENTS["dev"], "account": None, "region": None}}
    config = load_environment(raw, "x", default_account="111122223333", default_region="eu-west-1")
    assert (config.account, config.region) == ("111122223333", "eu-west-1")


def test_environment_values_win_over_cdk_defaults() -> None:
    raw = {"x": {**ENVIRONMENTS["dev"], "account": "444455556666", "region": "us-west-2"}}
    config = load_environment(raw, "x", default_account="111122223333", default_region="eu-west-1")
    assert (config.account, config.region) == ("444455556666", "us-west-2")


def test_missing_region_everywhere_is_an_error() -> None:
    raw = {"x": {**ENVIRONMENTS["dev"], "region": None}}
    with pytest.raises(ConfigError, match="no region"):
        load_environment(raw, "x")


@pytest.mark.parametrize(
    ("section", "setting", "value", "message"),
    [
        ("data_prep", "completion", "sometimes", "completion must be 'poll' or 'events'"),
        ("data_prep", "dlq_max_receive_count", 0, "dlq_max_receive_count"),
        ("data_prep", "glue_worker_type", "G.9X", "glue_worker_type must be one of"),
        ("data_prep", "vpc_id", "vpc-123", "vpc_id and data_prep.subnet_ids must be given together"),
        ("pipeline", "num_samples_per_tree", 0, "num_samples_per_tree must be 1..2048"),
        ("pipeline", "num_trees", 49, "num_trees must be 50..1000"),
        ("pipeline", "shingle_size", 48, "unknown setting\\(s\\) shingle_size"),
        ("pipeline", "schedule", "every day", "rate\\(...\\) or cron\\(...\\)"),
        ("streaming", "frequency_minutes", 7, "frequency_minutes must be 5 or 10"),
        ("streaming", "detector_offset_minutes", 5, "detector_offset_minutes"),
        ("streaming", "nonsense", 1, "unknown setting\\(s\\) nonsense"),
    ],
)
def test_invalid_settings_fail_with_a_message_naming_them(
    section: str, setting: str, value: object, message: str
) -> None:
    raw = {"x": {**ENVIRONMENTS["dev"], section: {**ENVIRONMENTS["dev"][section], setting: value}}}
    with pytest.raises(ConfigError, match=message):
        load_environment(raw, "x")


def test_existing_vpc_needs_its_subnets() -> None:
    prep = {**ENVIRONMENTS["dev"]["data_prep"], "vpc_id": "vpc-0abc", "subnet_ids": ["subnet-1", "subnet-2"]}
    config = load_environment({"x": {**ENVIRONMENTS["dev"], "data_prep": prep}}, "x")
    assert config.data_prep.subnet_ids == ("subnet-1", "subnet-2")


def _run_app(env_name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context |= {"env": env_name, "aws:cdk:bundling-stacks": []}
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_DEFAULT"))} | {
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_app_rejects_an_unknown_environment_with_the_valid_names(tmp_path: Path) -> None:
    result = _run_app("staging", tmp_path)
    assert result.returncode != 0
    assert "unknown environment 'staging'; valid environments: dev, prod" in result.stderr


@pytest.mark.slow
def test_app_synthesizes_without_credentials(tmp_path: Path) -> None:
    # Given no AWS credentials or CDK_DEFAULT_* in the environment
    result = _run_app("prod", tmp_path)
    # Then app.py synthesizes every prod stack (and cdk-nag found nothing to block it)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.template.json"))
