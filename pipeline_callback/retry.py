"""Retrying transient AWS errors with capped exponential backoff and full jitter.

Which errors are transient is decided in one place, `pipeline_callback.faults`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pipeline_callback.errors import describe_error
from pipeline_callback.faults import TRANSIENT_ERROR_CODES as TRANSIENT_ERROR_CODES
from pipeline_callback.faults import TransientError as TransientError
from pipeline_callback.faults import is_transient

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient_error(error: BaseException) -> bool:
    """Kept for callers of the old name: the shared rule of `pipeline_callback.faults`."""
    return is_transient(error)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 20.0
    # Never sleep more than this in total for one operation, whatever max_attempts allows.
    max_total_delay_seconds: float = 60.0


# Lambdas run with a timeout of about a minute: keep the sleeping for one call well inside it.
LAMBDA_RETRY_POLICY = RetryPolicy(
    max_attempts=4, base_delay_seconds=0.5, max_delay_seconds=4.0, max_total_delay_seconds=8.0
)
# Reporting a success is worth much more patience than anything else: the work is done, and giving up
# would turn it into a failed step. A task has no timeout to respect, so it keeps trying for 30 minutes.
SUCCESS_REPORT_RETRY_POLICY = RetryPolicy(
    max_attempts=60, base_delay_seconds=2.0, max_delay_seconds=60.0, max_total_delay_seconds=1800.0
)


@dataclass(frozen=True)
class Retrier:
    """Runs an operation, sleeping and retrying while it fails with a transient error.

    ``time_left`` (seconds, e.g. from a Lambda context) stops the retrying early: a sleep that would
    leave less than ``reserve_seconds`` is not taken, and the last error is raised instead.
    """

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random
    time_left: Callable[[], float] | None = None
    reserve_seconds: float = 5.0

    def with_policy(self, policy: RetryPolicy) -> Retrier:
        return Retrier(policy, self.sleep, self.random, self.time_left, self.reserve_seconds)

    def call(
        self,
        operation: Callable[[], T],
        *,
        description: str,
        is_transient: Callable[[BaseException], bool] = is_transient,
        before_retry: Callable[[BaseException], T | None] | None = None,
    ) -> T:
        """Run `operation`; `before_retry(error)` may return a result instead of retrying (or None to retry)."""
        total_delay = 0.0
        attempt = 1
        while True:
            try:
                return operation()
            except Exception as error:
                if not is_transient(error) or attempt >= self.policy.max_attempts:
                    raise
                ceiling = min(self.policy.max_delay_seconds, self.policy.base_delay_seconds * 2 ** (attempt - 1))
                delay = self.random() * ceiling
                if total_delay + delay > self.policy.max_total_delay_seconds:
                    raise
                if self.time_left is not None and self.time_left() - delay < self.reserve_seconds:
                    logger.warning("%s: no time left to retry (%s)", description, describe_error(error))
                    raise
                logger.warning(
                    "%s failed with a transient error (attempt %d of %d), retrying in %.2fs: %s",
                    description,
                    attempt,
                    self.policy.max_attempts,
                    delay,
                    describe_error(error),
                )
                self.sleep(delay)
                total_delay += delay
                attempt += 1
                if before_retry is not None:
                    found = before_retry(error)
                    if found is not None:
                        return found
