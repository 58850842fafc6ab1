"""The notifier: one mail per ApproveResults step, a clear failure for unusable input, stops answered."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from approval_notifier.config import NotifierConfig
from approval_notifier.logic import handle_approval_message
from approval_support import BUCKET, EXECUTION_ARN, NOW, REPORT, Mailbox, SageMakerCallbacks, message, new_token

from approval.references import reference_key
from approval.store import STOPPED, ApprovalStore
from pipeline_callback.message import UnanswerableMessageError
from pipeline_callback.retry import Retrier


def notify(
    body: str, store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> str:
    config = NotifierConfig(store.table_name, mailbox.topic_arn, "https://approve.example.on.aws", 72, "dev")
    return handle_approval_message(
        body,
        config,
        store=store,
        s3=s3,
        sns=mailbox.sns,
        sagemaker=sagemaker.client,
        retrier=retrier,
        clock=lambda: NOW,
    )


def test_a_start_message_sends_one_mail_with_the_run_figures_events_and_two_links(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)

    notify(message(token), store, s3, mailbox, sagemaker, retrier)
    # SQS delivers at least once: the same message again
    notify(message(token), store, s3, mailbox, sagemaker, retrier)

    mails = mailbox.messages()
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Type"] == "Notification" and mail["TopicArn"] == mailbox.topic_arn
    assert len(mail["Subject"]) < 100 and "abc123def456" in mail["Subject"]
    text = mail["Message"]
    assert EXECUTION_ARN in text and "Windows scored:  1,488" in text and "Cut-off:         1.800" in text
    assert "observed 812 vs expected 420 passengers" in text
    links = re.findall(r"https://approve\.example\.on\.aws/a/([A-Za-z0-9_-]{43})\?decision=(approve|reject)", text)
    assert [decision for _, decision in links] == ["approve", "reject"] and links[0][0] == links[1][0]
    # The link never carries the callback token, and the table keeps only the link's hash once the mail is out
    assert token not in text
    request = store.get_by_reference(links[0][0])
    assert request is not None and request.key == reference_key(links[0][0]) and request.expires_at == NOW + 72 * 3600
    scanned = store.dynamodb.scan(TableName=store.table_name)["Items"]
    assert links[0][0] not in json.dumps(scanned)
    assert sagemaker.outcome(token) is None


def test_an_unreadable_report_fails_the_step_naming_the_report(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)
    missing = f"s3://{BUCKET}/pipeline-executions/none/evaluation.json"

    notify(message(token, arguments={"report_uri": missing}), store, s3, mailbox, sagemaker, retrier)

    reason = sagemaker.outcome(token).failure_reason
    assert reason.startswith(f"Evaluation report {missing} cannot be read: NoSuchKey")
    assert mailbox.messages() == []


def test_a_report_without_the_cutoff_fails_the_step_saying_which_field(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)
    s3.put_object(Bucket=BUCKET, Key="bad.json", Body=json.dumps({k: v for k, v in REPORT.items() if k != "cutoff"}))

    notify(message(token, arguments={"report_uri": f"s3://{BUCKET}/bad.json"}), store, s3, mailbox, sagemaker, retrier)

    assert "the evaluation report has no 'cutoff'" in sagemaker.outcome(token).failure_reason


def test_arguments_without_a_report_uri_fail_the_step(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)
    notify(message(token, arguments={}), store, s3, mailbox, sagemaker, retrier)
    assert "'arguments.report_uri' must be an s3:// URI" in sagemaker.outcome(token).failure_reason


def test_a_message_without_a_token_cannot_be_answered_and_goes_to_the_dlq(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    with pytest.raises(UnanswerableMessageError):
        notify(json.dumps({"arguments": {}}), store, s3, mailbox, sagemaker, retrier)


def test_stopping_the_execution_closes_the_request_and_answers_the_step(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)
    notify(message(token), store, s3, mailbox, sagemaker, retrier)

    notify(
        json.dumps({"token": token, "pipelineExecutionArn": EXECUTION_ARN, "status": "Stopping"}),
        store,
        s3,
        mailbox,
        sagemaker,
        retrier,
    )

    assert sagemaker.outcome(token).failure_reason == "stopped on request"
    request = store.request_for_step(token)
    assert request is not None and request.status == STOPPED and request.delivered_at is not None


def test_a_stop_that_overtakes_its_start_leaves_nothing_to_approve(
    store: ApprovalStore, s3: Any, mailbox: Mailbox, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token = new_token()
    sagemaker.steps.expect(token, EXECUTION_ARN)

    notify(json.dumps({"token": token, "status": "Stopping"}), store, s3, mailbox, sagemaker, retrier)
    outcome = notify(message(token), store, s3, mailbox, sagemaker, retrier)

    assert "stopped before" in outcome
    assert mailbox.messages() == []
    assert sagemaker.outcome(token).failure_reason == "stopped on request"
