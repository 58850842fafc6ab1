"""`python -m ml_pipeline approve|reject|pending`: the operator path goes through the same single-use guard."""

from __future__ import annotations

import pytest
from approval_support import EXECUTION_ARN, NOW, SageMakerCallbacks, create_request

from approval.references import reference_key
from approval.store import APPROVED, ApprovalStore
from ml_pipeline.approval_cli import ApprovalCliError, decide_command, pending_command
from pipeline_callback.retry import Retrier

OPERATOR = "arn:aws:sts::123456789012:assumed-role/Operator/ana"


class Sts:
    def get_caller_identity(self) -> dict[str, str]:
        return {"Arn": OPERATOR}


def test_pending_lists_the_open_request_with_its_figures(store: ApprovalStore, sagemaker: SageMakerCallbacks) -> None:
    create_request(store, sagemaker)
    lines: list[str] = []
    pending_command(store=store, now=NOW + 60, print_line=lines.append)
    assert lines[0] == "1 approval request(s) pending"
    assert EXECUTION_ARN in lines[1] and "1,488 windows scored, 2 event(s)" in lines[1]


def test_approve_records_the_callers_identity_and_a_second_decision_loses(
    store: ApprovalStore, sagemaker: SageMakerCallbacks, retrier: Retrier
) -> None:
    token, reference = create_request(store, sagemaker)
    lines: list[str] = []

    def run(decision: str) -> int:
        return decide_command(
            decision=decision,
            execution_arn=EXECUTION_ARN,
            comment="ok",
            store=store,
            sagemaker=sagemaker.client,
            sts=Sts(),
            retrier=retrier,
            now=NOW + 60,
            print_line=lines.append,
        )

    assert run("approve") == 0
    assert sagemaker.outcome(token).output_parameters["approved_by"] == OPERATOR
    assert store.get_by_key(reference_key(reference)).status == APPROVED  # type: ignore[union-attr]
    # The page (or a second operator) comes too late
    with pytest.raises(ApprovalCliError, match="no pending approval request"):
        run("reject")
    assert sagemaker.outcome(token).succeeded
