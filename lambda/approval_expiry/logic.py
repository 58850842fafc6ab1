"""The scheduled check: expire overdue requests (failing their step with "approval expired") and
redeliver decisions whose callback did not get through. AWS clients are passed in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from approval.decisions import report_outcome
from approval.store import EXPIRED, PENDING, ApprovalStore
from pipeline_callback.errors import describe_error
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# A fresh decision is reported by the endpoint itself; the check only steps in after this grace.
REDELIVERY_GRACE_SECONDS = 120


@dataclass
class ExpiryRun:
    expired: list[str] = field(default_factory=list)
    redelivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.expired)} expired, {len(self.redelivered)} redelivered, {len(self.errors)} error(s)" + (
            f": {'; '.join(self.errors)}" if self.errors else ""
        )


def check_open_requests(
    store: ApprovalStore, *, sagemaker: SageMakerClient, retrier: Retrier, clock: Clock
) -> ExpiryRun:
    now = int(clock())
    run = ExpiryRun()
    for listed in store.open_requests(due_by=now):
        try:
            # The index is eventually consistent: act on the table's own (consistent) record.
            request = store.get_by_key(listed.key)
            if request is None or request.delivered_at is not None:
                continue
            if request.status == PENDING:
                if now < request.expires_at:
                    continue
                result = store.decide(
                    request.key,
                    status=EXPIRED,
                    decided_by="expiry check",
                    comment="",
                    via="expiry",
                    now=now,
                    allow_expired=True,
                )
                if not result.won:
                    continue  # someone decided in the meantime; that decision is reported by its own path
                if report_outcome(result.request, sagemaker, retrier, store, now):
                    run.expired.append(request.execution_arn)
                continue
            if now - (request.decided_at or 0) < REDELIVERY_GRACE_SECONDS:
                continue
            if report_outcome(request, sagemaker, retrier, store, now):
                run.redelivered.append(request.execution_arn)
        except Exception as error:
            logger.exception("Open approval request %s not handled", listed.execution_arn)
            run.errors.append(f"{listed.execution_arn}: {describe_error(error)}")
    return run
