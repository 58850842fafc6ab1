"""The scheduled check: overdue requests fail their step once; decisions SageMaker missed are redelivered."""

from __future__ import annotations

from typing import Any

from approval_expiry.logic import check_open_requests
from approval_support import EXECUTION_ARN, NOW, SageMakerCallbacks, create_request

from approval.decisions import decide
from approval.references import reference_key
from approval.store import APPROVED, EXPIRED, PENDING, ApprovalStore
from pipeline_callback.retry import Retrier


def test_a_request_not_yet_due_is_left_alone(
    store: ApprovalStore, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token, reference = create_request(store, sagemaker)
    run = check_open_requests(store, sagemaker=sagemaker.client, retrier=retrier, clock=lambda: NOW + 71 * 3600)
    assert run.expired == [] and store.get_by_reference(reference).status == PENDING  # type: ignore[union-attr]
    assert sagemaker.outcome(token) is None


def test_an_overdue_request_fails_its_step_once(
    store: ApprovalStore, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token, reference = create_request(store, sagemaker, hours=1)
    later = NOW + 3600

    first = check_open_requests(store, sagemaker=sagemaker.client, retrier=retrier, clock=lambda: later)
    second = check_open_requests(store, sagemaker=sagemaker.client, retrier=retrier, clock=lambda: later + 900)

    assert first.expired == [EXECUTION_ARN] and second.expired == [] and second.errors == []
    assert sagemaker.outcome(token).failure_reason == "approval expired"
    assert store.get_by_reference(reference).status == EXPIRED  # type: ignore[union-attr]


class Unavailable:
    """A SageMaker client whose callback calls fail with a server error every time."""

    def __getattr__(self, name: str) -> Any:
        from botocore.exceptions import ClientError

        def fail(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "try later"}}, name)

        return fail


def test_a_decision_whose_callback_failed_is_redelivered(
    store: ApprovalStore, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    # Given an approval recorded while SageMaker was unavailable
    token, reference = create_request(store, sagemaker)
    outcome = decide(
        store,
        Unavailable(),
        retrier,
        key=reference_key(reference),
        decision="approve",  # type: ignore[arg-type]
        decided_by="ana",
        comment="",
        via="link",
        now=NOW + 60,
    )
    assert outcome.won and not outcome.reported and "recorded" in outcome.message
    assert sagemaker.outcome(token) is None

    # When the check runs a few minutes later
    run = check_open_requests(store, sagemaker=sagemaker.client, retrier=retrier, clock=lambda: NOW + 600)

    # Then SageMaker gets the approval, once, and the request leaves the open index
    assert run.redelivered == [EXECUTION_ARN]
    assert sagemaker.outcome(token).output_parameters["approved_by"] == "ana"
    request = store.get_by_reference(reference)
    assert request is not None and request.status == APPROVED and request.delivered_at == NOW + 600
    assert list(store.open_requests()) == []
