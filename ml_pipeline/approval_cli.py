"""`python -m ml_pipeline approve|reject|pending`: operators decide through the same single-use guard as the page.

The table is found through the storage stack's `ApprovalTableName` output; the decision is recorded
with the caller's IAM identity (STS GetCallerIdentity) as the approver.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from app_config import stack_name
from approval.decisions import MAX_COMMENT_CHARS, clean_text, decide
from approval.store import PENDING, ApprovalRequest, ApprovalStore
from pipeline_callback.retry import Retrier

APPROVAL_TABLE_OUTPUT_KEY = "ApprovalTableName"


class ApprovalCliError(Exception):
    """Printed without a traceback, like the pipeline CLI's errors."""


def resolve_table_name(cloudformation: Any, env_name: str) -> str:
    name = stack_name(env_name, "storage")
    outputs = cloudformation.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    values = {output["OutputKey"]: output["OutputValue"] for output in outputs}
    if APPROVAL_TABLE_OUTPUT_KEY not in values:
        raise ApprovalCliError(f"stack {name} has no {APPROVAL_TABLE_OUTPUT_KEY} output; is it deployed?")
    return str(values[APPROVAL_TABLE_OUTPUT_KEY])


def _at(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch or 0, UTC).strftime("%Y-%m-%d %H:%M UTC")


def pending_requests(store: ApprovalStore, now: int) -> list[ApprovalRequest]:
    requests = []
    for listed in store.open_requests():
        current = store.get_by_key(listed.key)
        if current is not None and current.status == PENDING and now < current.expires_at:
            requests.append(current)
    return sorted(requests, key=lambda request: request.created_at)


def pending_command(*, store: ApprovalStore, now: int, print_line: Any) -> int:
    requests = pending_requests(store, now)
    print_line(f"{len(requests)} approval request(s) pending")
    for request in requests:
        summary = request.summary
        print_line(
            f"  {request.execution_arn}\n    asked {_at(request.created_at)}, expires {_at(request.expires_at)}; "
            f"{summary.rows_scored:,} windows scored, {summary.event_count} event(s), cut-off {summary.cutoff:.3f}"
        )
    return 0


def decide_command(
    *,
    decision: str,
    execution_arn: str,
    comment: str,
    store: ApprovalStore,
    sagemaker: Any,
    sts: Any,
    retrier: Retrier,
    now: int,
    print_line: Any,
) -> int:
    matches = [request for request in pending_requests(store, now) if request.execution_arn == execution_arn]
    if not matches:
        decided = [r for r in store.open_requests() if r.execution_arn == execution_arn]
        hint = f" (it is {decided[0].status})" if decided else ""
        raise ApprovalCliError(f"no pending approval request for {execution_arn}{hint}; see `pending`")
    caller = str(sts.get_caller_identity()["Arn"])
    outcome = decide(
        store,
        sagemaker,
        retrier,
        key=matches[0].key,
        decision=decision,
        decided_by=caller,
        comment=clean_text(comment, MAX_COMMENT_CHARS),
        via="cli",
        now=now,
    )
    print_line(outcome.message)
    return 0 if outcome.won else 1


def now_epoch() -> int:
    return int(time.time())
