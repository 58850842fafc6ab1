"""Streaming settings: an existing stream, the job's run policy, retries and maintenance window; errors name them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app_config import ConfigError, load_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def streaming(env: str = "dev", account: str | None = "123456789012", **settings: Any) -> Any:
    raw = {"x": {**ENVIRONMENTS[env], "account": account, "streaming": {**ENVIRONMENTS[env]["streaming"], **settings}}}
    return load_environment(raw, "x").streaming


EXISTING_STREAM = {"source_stream_arn": STREAM_ARN, "generator_enabled": False, "job_run_mode": "always"}


def test_dev_runs_the_smallest_streaming_worker_while_the_generator_is_on() -> None:
    config = streaming()
    assert (config.glue_worker_type, config.glue_number_of_workers) == ("G.025X", 2)
    assert (config.job_run_mode, config.maintenance_window) == ("with_generator", "Sun:03")


def test_an_existing_stream_with_its_key_is_accepted() -> None:
    config = streaming(**EXISTING_STREAM, source_stream_kms_key_arn=KEY_ARN, source_starting_position="LATEST")
    assert (config.source_stream_arn, config.source_stream_kms_key_arn) == (STREAM_ARN, KEY_ARN)


def test_active_hours_become_a_pair() -> None:
    assert streaming(job_run_mode="active_hours", job_active_hours_utc=[22, 6]).job_active_hours_utc == (22, 6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({**EXISTING_STREAM, "source_stream_arn": "clickstream"}, "streaming.source_stream_arn must be a Kinesis"),
        (
            {**EXISTING_STREAM, "source_stream_arn": STREAM_ARN.replace("us-east-1", "eu-west-1")},
            "streaming.source_stream_arn is in region eu-west-1, but this environment deploys to us-east-1",
        ),
        (
            {**EXISTING_STREAM, "source_stream_arn": STREAM_ARN.replace("123456789012", "210987654321")},
            "streaming.source_stream_arn is in account 210987654321",
        ),
        ({**EXISTING_STREAM, "generator_enabled": True}, "streaming.generator_enabled must be false"),
        ({**EXISTING_STREAM, "job_run_mode": "with_generator"}, "'with_generator' needs the generator"),
        ({"source_stream_kms_key_arn": KEY_ARN}, "streaming.source_stream_kms_key_arn is only used with"),
        (
            {**EXISTING_STREAM, "source_stream_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:alias/stream"},
            "streaming.source_stream_kms_key_arn must be a KMS key ARN",
        ),
        ({"source_starting_position": "yesterday"}, "streaming.source_starting_position must be"),
        ({"job_run_mode": "weekdays"}, "streaming.job_run_mode must be one of"),
        ({"job_run_mode": "active_hours"}, "streaming.job_active_hours_utc must be \\[start_hour, end_hour\\]"),
        ({"job_run_mode": "active_hours", "job_active_hours_utc": [8, 8]}, "streaming.job_active_hours_utc"),
        ({"job_run_mode": "active_hours", "job_active_hours_utc": [8, 24]}, "streaming.job_active_hours_utc"),
        ({"job_active_hours_utc": [8, 18]}, "only used when streaming.job_run_mode is 'active_hours'"),
        ({"maintenance_window": "Sunday 3am"}, "streaming.maintenance_window must be <Day>:<hour>"),
        ({"maintenance_window": "Sun:24"}, "streaming.maintenance_window"),
        ({"job_max_retries": 11}, "streaming.job_max_retries must be 0..10"),
        ({"batch_max_retries": -1}, "streaming.batch_max_retries must be 0..10"),
        ({"job_failure_limit": 0}, "streaming.job_failure_limit must be 1..100"),
        ({"job_failure_window_hours": 0}, "streaming.job_failure_window_hours must be 1..168"),
        ({"supervisor_interval_minutes": 0}, "streaming.supervisor_interval_minutes must be 1..60"),
        ({"glue_worker_type": "Z.2X"}, "streaming.glue_worker_type must be one of G.025X"),
    ],
)
def test_bad_streaming_settings_fail_with_a_message_naming_them(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        streaming(**settings)


def test_the_stream_account_is_checked_only_when_the_environment_knows_its_account() -> None:
    other_account = STREAM_ARN.replace("123456789012", "210987654321")
    assert streaming(account=None, **{**EXISTING_STREAM, "source_stream_arn": other_account}).source_stream_arn


ALERT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:on-anomaly-group"


def test_alert_settings_default_to_severity_70_and_no_lambda() -> None:
    config = streaming()
    assert (config.alert_min_severity, config.alert_lambda_arn) == (70.0, None)


def test_an_alert_lambda_in_the_environment_is_accepted_with_or_without_a_qualifier() -> None:
    assert streaming(alert_lambda_arn=ALERT_FUNCTION_ARN).alert_lambda_arn == ALERT_FUNCTION_ARN
    assert streaming(alert_lambda_arn=f"{ALERT_FUNCTION_ARN}:live").alert_lambda_arn == f"{ALERT_FUNCTION_ARN}:live"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alert_min_severity": 0}, r"streaming.alert_min_severity must be a severity in \(0, 100\], got 0"),
        ({"alert_min_severity": 101}, r"streaming.alert_min_severity must be a severity in \(0, 100\], got 101"),
        ({"alert_min_severity": "high"}, r"streaming.alert_min_severity must be a severity"),
        ({"alert_lambda_arn": "on-anomaly-group"}, r"streaming.alert_lambda_arn must be a Lambda function ARN"),
        (
            {"alert_lambda_arn": "arn:aws:sns:us-east-1:123456789012:alerts"},
            r"streaming.alert_lambda_arn must be a Lambda function ARN",
        ),
        (
            {"alert_lambda_arn": ALERT_FUNCTION_ARN.replace("us-east-1", "eu-west-1")},
            r"streaming.alert_lambda_arn is in region eu-west-1, but this environment deploys to us-east-1",
        ),
        (
            {"alert_lambda_arn": ALERT_FUNCTION_ARN.replace("123456789012", "210987654321")},
            r"streaming.alert_lambda_arn is in account 210987654321",
        ),
    ],
)
def test_bad_alert_settings_fail_naming_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        streaming(**settings)


def test_detector_size_and_partitions_default_and_are_checked() -> None:
    config = load_environment(
        json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"], "prod"
    ).streaming
    assert (config.detector_memory_mb, config.detector_timeout_seconds, config.detector_partitions) == (1024, 120, 1)
    for settings, message in [
        ({"detector_partitions": 0}, "streaming.detector_partitions must be 1..64"),
        ({"detector_partitions": 65}, "streaming.detector_partitions must be 1..64"),
        ({"detector_memory_mb": 64}, "streaming.detector_memory_mb must be 128..10240"),
        ({"detector_timeout_seconds": 301}, "streaming.detector_timeout_seconds must be 1..900 and at most one"),
    ]:
        raw = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
        raw["dev"]["streaming"].update(settings)
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            load_environment(raw, "dev")
