"""Retrying transient AWS errors with capped exponential backoff and full jitter."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import ClientError

from pipeline_callback.errors import describe_error, error_code

logger = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLING_ERROR_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# Glue refuses a run while the job is at MaxConcurrentRuns; it frees up as runs finish.
CAPACITY_ERROR_CODES = frozenset({"ConcurrentRunsExceededException"})
# Server-side hiccups are worth another try as well.
SERVER_ERROR_CODES = frozenset(
    {
        "InternalServiceException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServerException",
        "OperationTimeoutException",
    }
)
TRANSIENT_ERROR_CODES = THROTTLING_ERROR_CODES | CAPACITY_ERROR_CODES | SERVER_ERROR_CODES


class TransientError(Exception):
    """Raised by an operation to ask for a retry (e.g. ECS RunTask capacity `failures`)."""


def is_transient_error(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    return isinstance(error, ClientError) and error_code(error) in TRANSIENT_ERROR_CODES


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 20.0
    # Never sleep more than this in total for one operation, whatever max_attempts allows.
    max_total_delay_seconds: float = 60.0


# Lambdas run with a timeout of about a minute: keep the sleeping for one call well inside it.
LAMBDA_RETRY_POLICY = RetryPolicy(
    max_attempts=5, base_delay_seconds=0.5, max_delay_seconds=8.0, max_total_delay_seconds=20.0
)


@dataclass(frozen=True)
class Retrier:
    """Runs an operation, sleeping and retrying while it fails with a transient error."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random

    def call(
        self,
        operation: Callable[[], T],
        *,
        description: str,
        is_transient: Callable[[BaseException], bool] = is_transient_error,
    ) -> T:
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
