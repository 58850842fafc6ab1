"""`python -m streaming_cli feedback|groups` on a local out folder and, with moto, on a deployed environment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from alert_group_records import web_de_revenue_drop
from anomaly_detector.alerts import groups_to_alert
from anomaly_detector.feedback import LocalFeedbackStore
from moto import mock_aws

from streaming_cli.cli import main
from streaming_cli.group_records import ANOMALIES, BUCKET_ROOT, FEEDBACK

GROUP_ID = "revenue-low-20261202T1405Z"
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
OPENED = web_de_revenue_drop()
ONGOING = web_de_revenue_drop(
    status="ongoing",
    interval_start="2026-12-02T14:10:00Z",
    interval_end="2026-12-02T14:15:00Z",
    severity=92.0,
    observed=1000.0,
    alerted=True,
)
OTHER = web_de_revenue_drop(group_id="views-high-20261202T1410Z", measure="views", direction="high", severity=50.0)


def _partition(start: str) -> str:
    moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
    return f"intvl_date={moment:%Y-%m-%d}/intvl_hhmm={moment:%H%M}/groups.jsonl"


def _files(*records: dict[str, Any]) -> dict[str, str]:
    files: dict[str, list[str]] = {}
    for record in records:
        files.setdefault(_partition(record["interval_start"]), []).append(json.dumps(record))
    return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An out folder as `make local` leaves it: the group opened at 14:05, went on at 14:10, and closed."""
    later = web_de_revenue_drop(group_id="revenue-low-20261202T1430Z", interval_start="2026-12-02T14:30:00Z")
    for name, text in _files(OPENED, ONGOING, OTHER, later).items():
        path = tmp_path / "streaming" / "anomalies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def run(argv: list[str]) -> int:
    return main(argv, clock=lambda: NOW)


def test_feedback_records_a_label_built_from_the_groups_peak(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["feedback", GROUP_ID, "--not-anomaly", "--note", "planned promo", "--out", str(out)]) == 0
    label = json.loads((out / "streaming" / "feedback" / f"{GROUP_ID}.json").read_text())
    assert label == {
        "group_id": GROUP_ID,
        "verdict": "not_anomaly",
        "measure": "revenue",
        "direction": "low",
        "level": "combination",
        "series": ["revenue|platform=app|marketplace=fr", "revenue|platform=web|marketplace=de"],
        "severity": 92.0,
        "observed": 1000.0,
        "expected": 2125.0,
        "recorded_at": "2026-12-02T15:00:00Z",
        "note": "planned promo",
    }
    assert f"{GROUP_ID}: recorded not_anomaly" in capsys.readouterr().out


def test_a_label_from_the_cli_quiets_a_later_group_of_the_same_pattern(out: Path) -> None:
    run(["feedback", GROUP_ID, "--not-anomaly", "--out", str(out)])
    labels = LocalFeedbackStore(out / "streaming" / "feedback").read_labels()
    tomorrow = web_de_revenue_drop(group_id="revenue-low-20261203T1405Z")
    assert groups_to_alert([tomorrow], min_severity=70.0, labels=labels) == []
    # And relabelling the group as an anomaly lets the pattern alert again (the latest label wins)
    run(["feedback", GROUP_ID, "--anomaly", "--out", str(out)])
    labels = LocalFeedbackStore(out / "streaming" / "feedback").read_labels()
    assert groups_to_alert([tomorrow], min_severity=70.0, labels=labels) == [tomorrow]


def test_groups_lists_recent_groups_with_their_feedback(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["feedback", GROUP_ID, "--not-anomaly", "--out", str(out)])
    capsys.readouterr()
    assert run(["groups", "--since", "2", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("GROUP")
    (line,) = [line for line in lines if line.startswith(GROUP_ID)]
    # one line per group, its latest interval and peak severity
    assert line.split()[1:6] == ["2026-12-02T14:10", "92", "yes", "not_anomaly", "revenue"]
    assert line.endswith("revenue low in web/de")
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("group_id", "message"),
    [
        ("revenue-low-20261202T1300Z", "error: no anomaly group revenue-low-20261202T1300Z in "),
        ("../../etc/passwd", "error: group id '../../etc/passwd' is not a group id"),
    ],
)
def test_an_unknown_or_malformed_group_id_is_one_line_naming_it(
    out: Path, capsys: pytest.CaptureFixture[str], group_id: str, message: str
) -> None:
    assert run(["feedback", group_id, "--anomaly", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message)
    assert error.count("\n") == 1
    assert not (out / "streaming" / "feedback").exists()


def test_a_missing_out_folder_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["groups", "--out", str(tmp_path / "nowhere")]) == 2
    assert "run `make local` first" in capsys.readouterr().err


def test_the_layout_matches_the_detector_construct() -> None:
    from cdk_constructs.anomaly_detector import ANOMALIES_PREFIX, FEEDBACK_PREFIX

    assert (BUCKET_ROOT + ANOMALIES, BUCKET_ROOT + FEEDBACK) == (ANOMALIES_PREFIX, FEEDBACK_PREFIX)


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Any:
    """dev's storage stack (moto) with the metrics bucket output, holding the same group files."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        template = {
            "Resources": {"Metrics": {"Type": "AWS::S3::Bucket"}},
            "Outputs": {"MetricsBucketName": {"Value": {"Ref": "Metrics"}}},
        }
        cloudformation.create_stack(StackName="taxi-anomaly-dev-storage", TemplateBody=json.dumps(template))
        outputs = cloudformation.describe_stacks(StackName="taxi-anomaly-dev-storage")["Stacks"][0]["Outputs"]
        bucket = outputs[0]["OutputValue"]
        s3 = boto3.client("s3", region_name="us-east-1")
        for name, text in _files(OPENED, ONGOING).items():
            s3.put_object(Bucket=bucket, Key=f"metrics/anomalies/{name}", Body=text.encode())
        yield s3, bucket


def test_feedback_on_a_deployed_environment_writes_the_label_to_the_bucket(
    deployed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, bucket = deployed
    assert run(["feedback", GROUP_ID, "--not-anomaly", "--env", "dev"]) == 0
    body = s3.get_object(Bucket=bucket, Key=f"metrics/feedback/{GROUP_ID}.json")["Body"].read()
    assert json.loads(body)["verdict"] == "not_anomaly"
    assert f"s3://{bucket}/metrics/feedback/{GROUP_ID}.json" in capsys.readouterr().out
    assert run(["groups", "--env", "dev"]) == 0
    assert "not_anomaly" in capsys.readouterr().out


def test_a_missing_stack_is_one_line_naming_it(deployed: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["groups", "--env", "dev", "--region", "eu-west-1"]) == 2
    assert capsys.readouterr().err == (
        "error: stack taxi-anomaly-dev-storage does not exist in eu-west-1: deploy it with `make deploy ENV=dev`, "
        "or pass --region with the region it is deployed in\n"
    )
