"""The notifier under transient faults: retried while the invocation has time, redelivered by SQS, and on the
message's last delivery the step is failed with a reason instead of being left to the DLQ.

Faults are injected below botocore (approval_support.WireFaults): clients are configured as in production
(pipeline_callback.clients), talk HTTP to loopback servers (moto's server for DynamoDB, S3 and SNS; the local
mode's SageMaker callback emulator), and botocore's own retries and error parsing run.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from approval_expiry.logic import REDELIVERY_GRACE_SECONDS, check_open_requests
from approval_notifier.config import NotifierConfig, load_config
from approval_notifier.logic import Delivery, handle_approval_message
from approval_support import (
    EXECUTION_ARN,
    NOW,
    REGION,
    Mailbox,
    SageMakerCallbacks,
    WireFaults,
    message,
    new_token,
)

from approval.decisions import describe
from approval.store import FAILED, PENDING, ApprovalStore
from local_mode.dynamodb_server import DynamoDbServer
from pipeline_callback.clients import client_config
from pipeline_callback.environment import ConfigError
from pipeline_callback.retry import Retrier, RetryPolicy

EVENTS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "events"
MAX_RECEIVE_COUNT = 5
LAST = Delivery(receive_count=MAX_RECEIVE_COUNT, max_receive_count=MAX_RECEIVE_COUNT)
FIRST = Delivery(receive_count=1, max_receive_count=MAX_RECEIVE_COUNT)

pytestmark = pytest.mark.usefixtures("botocore_does_not_really_sleep")


def production_client(service: str, endpoint_url: str) -> Any:
    """Configured exactly as the notifier's own clients (botocore's standard retries included)."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(service),
    )


@dataclass
class Wire:
    sns: WireFaults
    sagemaker: WireFaults
    dynamodb: WireFaults
    mailbox: Mailbox
    store: ApprovalStore
    callbacks: SageMakerCallbacks


@pytest.fixture
def wire(dynamodb_server: DynamoDbServer, store: ApprovalStore, sagemaker: SageMakerCallbacks) -> Wire:
    sns = production_client("sns", dynamodb_server.endpoint_url)
    dynamodb = production_client("dynamodb", dynamodb_server.endpoint_url)
    sagemaker_client = production_client("sagemaker", sagemaker.client.meta.endpoint_url)
    return Wire(
        sns=WireFaults(sns),
        sagemaker=WireFaults(sagemaker_client),
        dynamodb=WireFaults(dynamodb),
        mailbox=Mailbox(dynamodb_server, sns=sns),
        store=ApprovalStore(dynamodb, store.table_name),
        callbacks=SageMakerCallbacks(steps=sagemaker.steps, client=sagemaker_client),
    )


def no_sleep_retrier(**options: Any) -> Retrier:
    return Retrier(policy=RetryPolicy(max_attempts=3, base_delay_seconds=0.0), sleep=lambda _: None, **options)


def notify(wire: Wire, body: str, s3: Any, delivery: Delivery, retrier: Retrier | None = None) -> str:
    config = NotifierConfig(
        wire.store.table_name, wire.mailbox.topic_arn, "https://approve.example.on.aws", 72, "dev", MAX_RECEIVE_COUNT
    )
    return handle_approval_message(
        body,
        config,
        store=wire.store,
        s3=s3,
        sns=wire.sns.client,
        sagemaker=wire.sagemaker.client,
        retrier=retrier or no_sleep_retrier(),
        clock=lambda: NOW,
        delivery=delivery,
    )


def test_a_throttled_publish_is_redelivered_and_fails_the_step_with_a_reason_on_the_last_delivery(
    wire: Wire, s3: Any
) -> None:
    # Given an ApproveResults step whose approvers topic keeps throttling Publish
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.sns.fail("Publish", "throttled")

    # When deliveries 1..4 arrive, each raises so that SQS delivers the message again
    for count in range(1, MAX_RECEIVE_COUNT):
        with pytest.raises(Exception, match="Throttling"):
            notify(wire, message(token), s3, Delivery(count, MAX_RECEIVE_COUNT))
        assert wire.callbacks.outcome(token) is None
    # (botocore retried each attempt itself, below our own retries)
    assert wire.sns.count("Publish") > 3 * (MAX_RECEIVE_COUNT - 1)

    # And the last delivery gives up instead of raising
    outcome = notify(wire, message(token), s3, LAST)

    # Then the step failed with a reason a person can act on, and nothing is left waiting
    reason = wire.callbacks.outcome(token).failure_reason
    assert reason.startswith(f"Could not send the approval request after {MAX_RECEIVE_COUNT} attempts (throttled): ")
    assert "Throttling" in reason and "re-run the pipeline execution" in reason
    assert "gave up" in outcome
    request = wire.store.request_for_step(token)
    assert request is not None and request.status == FAILED and request.comment == reason
    assert request.delivered_at is not None  # out of the open index: the expiry check has nothing to do
    assert wire.mailbox.messages() == []


def test_a_request_that_failed_on_its_last_delivery_cannot_be_approved_afterwards(wire: Wire, s3: Any) -> None:
    # Given a last delivery that gave up after the request was created
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.sns.fail("Publish", "not-sent")
    notify(wire, message(token), s3, LAST)
    request = wire.store.request_for_step(token)
    assert request is not None

    # When someone tries to decide it (a copy of the link, the CLI)
    result = wire.store.decide(request.key, status="APPROVED", decided_by="alice", comment="", via="page", now=NOW)

    # Then the single-use guard refuses: the request was closed as FAILED
    assert not result.won and result.request.status == FAILED
    assert "failed at 2026-01-01 00:00 UTC before anyone decided: Could not send" in describe(result.request, NOW)
    assert "connection error" in wire.callbacks.outcome(token).failure_reason


def test_when_even_the_step_failure_fails_the_message_goes_to_the_dlq_and_the_expiry_check_resends_it(
    wire: Wire, s3: Any
) -> None:
    # Given a last delivery where Publish is throttled and SageMaker cannot be reached either
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.sns.fail("Publish", "throttled")
    wire.sagemaker.fail("SendPipelineExecutionStepFailure", "not-sent")

    # When it is handled, it raises: the record fails on its last delivery, so SQS moves it to the alarmed DLQ
    with pytest.raises(Exception, match="not delivered"):
        notify(wire, message(token), s3, LAST)
    assert wire.callbacks.outcome(token) is None
    request = wire.store.request_for_step(token)
    assert request is not None and request.status == FAILED and request.delivered_at is None

    # And once SageMaker answers again, the scheduled expiry check delivers the recorded failure
    wire.sagemaker.heal()
    run = check_open_requests(
        wire.store,
        sagemaker=wire.sagemaker.client,
        retrier=no_sleep_retrier(),
        clock=lambda: NOW + REDELIVERY_GRACE_SECONDS + 1,
    )
    assert run.redelivered == [EXECUTION_ARN]
    assert wire.callbacks.outcome(token).failure_reason == request.comment


def test_a_last_delivery_that_cannot_create_the_request_still_fails_the_step_and_a_late_copy_sends_nothing(
    wire: Wire, s3: Any
) -> None:
    # Given DynamoDB refusing the request's creation (throttled) on the last delivery
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.dynamodb.fail("TransactWriteItems", "throttled")

    # When it is handled
    notify(wire, message(token), s3, LAST)

    # Then the step failed, naming the cause
    assert "(throttled)" in wire.callbacks.outcome(token).failure_reason
    # And a copy of the message delivered later (SQS delivers at least once) mails no one
    wire.dynamodb.heal()
    outcome = notify(wire, message(token), s3, FIRST)
    assert "already failed" in outcome
    assert wire.mailbox.messages() == [] and wire.sns.count("Publish") == 0


def test_retries_stop_at_the_invocations_deadline_and_the_last_delivery_still_fails_the_step(
    wire: Wire, s3: Any
) -> None:
    # Given an invocation with 24 s left, whose retries sleep (on a clock that moves with the sleeps)
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.sns.fail("Publish", "throttled")
    slept: list[float] = []
    retrier = Retrier(
        policy=RetryPolicy(max_attempts=50, base_delay_seconds=4, max_delay_seconds=4, max_total_delay_seconds=600),
        sleep=slept.append,
        random=lambda: 1.0,
        time_left=lambda: 24.0 - sum(slept),
        reserve_seconds=10.0,
    )

    # When the last delivery is handled
    notify(wire, message(token), s3, LAST, retrier)

    # Then the retrying stopped with the reserve still left, and that was used to fail the step
    assert sum(slept) <= 24.0 - 10.0
    assert "after 5 attempts (throttled)" in wire.callbacks.outcome(token).failure_reason


# -- the handler: receive count and remaining time come from the event and the Lambda context ------------
@dataclass(frozen=True)
class Context:
    remaining_ms: int = 60_000
    function_name: str = "approval-notifier"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:approval-notifier"
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def environment(wire: Wire, **changes: str) -> dict[str, str]:
    values = {
        "APPROVAL_TABLE_NAME": wire.store.table_name,
        "APPROVERS_TOPIC_ARN": wire.mailbox.topic_arn,
        "APPROVAL_ENDPOINT_URL": "https://approve.example.on.aws",
        "APPROVAL_EXPIRES_HOURS": "72",
        "ENVIRONMENT_NAME": "dev",
        "APPROVAL_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "AWS_DEFAULT_REGION": REGION,
    }
    values.update(changes)
    return values


def cold_start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("approval_notifier.handler", None)
    return importlib.import_module("approval_notifier.handler")


def sqs_event(body: str, receive_count: int) -> dict[str, Any]:
    sample = json.loads((EVENTS_DIR / "sqs-lambda-event.json").read_text(encoding="utf-8"))
    record = copy.deepcopy(sample["Records"][0])
    record["body"] = body
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return {"Records": [record]}


@pytest.fixture
def handler(wire: Wire, s3: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = cold_start(monkeypatch, environment(wire))
    monkeypatch.setattr(module, "store", wire.store)
    monkeypatch.setattr(module, "s3_client", s3)
    monkeypatch.setattr(module, "sns_client", wire.sns.client)
    monkeypatch.setattr(module, "sagemaker_client", wire.sagemaker.client)
    monkeypatch.setattr(module, "retry_sleep", lambda _: None)
    return module


def test_the_handler_fails_the_step_on_the_delivery_whose_receive_count_reaches_max_receive_count(
    handler: ModuleType, wire: Wire
) -> None:
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    wire.sns.fail("Publish", "throttled")

    # Delivery 4 of 5: the record fails, so SQS delivers it again
    result = handler.lambda_handler(sqs_event(message(token), MAX_RECEIVE_COUNT - 1), Context())
    assert len(result["batchItemFailures"]) == 1 and wire.callbacks.outcome(token) is None

    # Delivery 5 of 5: the step is failed with the reason and the record succeeds (SQS deletes it)
    result = handler.lambda_handler(sqs_event(message(token), MAX_RECEIVE_COUNT), Context())
    assert result["batchItemFailures"] == []
    assert "after 5 attempts (throttled)" in wire.callbacks.outcome(token).failure_reason


def test_the_handler_does_not_begin_a_start_without_time_to_finish_it(handler: ModuleType, wire: Wire) -> None:
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)

    # With 14 s of the invocation left, a first delivery is not begun: it comes back later
    result = handler.lambda_handler(sqs_event(message(token), 1), Context(remaining_ms=14_000))
    assert len(result["batchItemFailures"]) == 1
    assert wire.sns.count("Publish") == 0 and wire.store.request_for_step(token) is None

    # On the last delivery the same shortage fails the step, saying why
    result = handler.lambda_handler(sqs_event(message(token), MAX_RECEIVE_COUNT), Context(remaining_ms=14_000))
    assert result["batchItemFailures"] == []
    reason = wire.callbacks.outcome(token).failure_reason
    assert "after 5 attempts (out of time): NotEnoughTimeError: only 14.0s of the invocation left" in reason


@pytest.mark.parametrize(("value", "complaint"), [("", "is required"), ("five", "integer"), ("0", "1..1000")])
def test_the_max_receive_count_is_validated_at_cold_start(wire: Wire, value: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=rf"APPROVAL_MAX_RECEIVE_COUNT.*{complaint}"):
        load_config(environment(wire, APPROVAL_MAX_RECEIVE_COUNT=value))
    assert load_config(environment(wire)).max_receive_count == MAX_RECEIVE_COUNT


def test_an_ordinary_delivery_still_sends_the_mail(wire: Wire, s3: Any) -> None:
    token = new_token()
    wire.callbacks.steps.expect(token, EXECUTION_ARN)
    notify(wire, message(token), s3, LAST)
    assert len(wire.mailbox.messages()) == 1
    request = wire.store.request_for_step(token)
    assert request is not None and request.status == PENDING and wire.callbacks.outcome(token) is None
