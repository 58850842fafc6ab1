"""The SNS and Lambda alert targets make the documented calls (moto for SNS, botocore's Stubber for Lambda)."""

from __future__ import annotations

import json

import boto3
import pytest
from alert_group_records import contributor, web_de_revenue_drop
from anomaly_detector.alerts import (
    LAMBDA_EVENT_MAX_BYTES,
    LambdaAlertTarget,
    SnsAlertTarget,
    alert_message,
    alert_subject,
)
from botocore.stub import ANY, Stubber
from moto import mock_aws

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:on-anomaly"


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)


@mock_aws
def test_sns_target_publishes_subject_and_message_to_the_topic(fake_credentials: None) -> None:
    # Given a topic with an SQS subscriber (raw delivery off, so the envelope carries the subject)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    group = web_de_revenue_drop()
    # When
    SnsAlertTarget(sns, topic_arn).send(alert_subject(group), alert_message(group), group)
    # Then
    envelope = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])
    assert envelope["Subject"] == "revenue low in web/de, severity 87, 14:05-14:10 UTC"
    assert json.loads(envelope["Message"].partition("Record:\n")[2])["group_id"] == group["group_id"]


def _stubbed_lambda() -> tuple[object, Stubber]:
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_lambda_target_invokes_asynchronously_with_the_group_record() -> None:
    client, stubber = _stubbed_lambda()
    group = web_de_revenue_drop()
    stubber.add_response(
        "invoke",
        {"StatusCode": 202},
        {"FunctionName": FUNCTION_ARN, "InvocationType": "Event", "Payload": ANY},
    )
    with stubber:
        LambdaAlertTarget(client, FUNCTION_ARN).send("subject", "message", group)  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()


def test_lambda_payload_is_the_record_and_a_huge_one_is_trimmed_below_256_kb() -> None:
    sent: list[bytes] = []

    class RecordingLambda:
        def invoke(self, **kwargs: object) -> dict[str, int]:
            assert kwargs["InvocationType"] == "Event"
            sent.append(kwargs["Payload"])  # type: ignore[arg-type]
            return {"StatusCode": 202}

    small = web_de_revenue_drop()
    many = [contributor("revenue", 0.0, 50.0, 1.0, 2.0, platform="web", marketplace=f"m{i:05d}") for i in range(8000)]
    target = LambdaAlertTarget(RecordingLambda(), FUNCTION_ARN)  # type: ignore[arg-type]
    target.send("s", "m", small)
    target.send("s", "m", web_de_revenue_drop(contributors=many))
    assert json.loads(sent[0]) == small
    assert len(sent[1]) <= LAMBDA_EVENT_MAX_BYTES
    assert json.loads(sent[1])["trimmed"] == {"contributors": 8000}


def test_a_rejected_invoke_surfaces_as_an_error() -> None:
    client, stubber = _stubbed_lambda()
    stubber.add_client_error("invoke", service_error_code="ResourceNotFoundException", http_status_code=404)
    with stubber, pytest.raises(client.exceptions.ResourceNotFoundException):  # type: ignore[attr-defined]
        LambdaAlertTarget(client, FUNCTION_ARN).send("s", "m", web_de_revenue_drop())  # type: ignore[arg-type]
