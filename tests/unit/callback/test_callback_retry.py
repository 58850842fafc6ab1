"""The retry helper: capped exponential backoff with full jitter, bounded attempts and total delay."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from callback_support import RecordingSleep

from pipeline_callback.retry import Retrier, RetryPolicy, TransientError, is_transient_error


def throttling() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "AnyOperation")


class FailingOperation:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ConcurrentRunsExceededException",
    ],
)
def test_throttling_and_glue_concurrency_errors_are_transient(code: str) -> None:
    # Given / When / Then
    assert is_transient_error(ClientError({"Error": {"Code": code, "Message": "x"}}, "Op"))


def test_other_errors_are_permanent() -> None:
    # Given / When / Then
    assert not is_transient_error(ClientError({"Error": {"Code": "AccessDeniedException", "Message": "x"}}, "Op"))
    assert not is_transient_error(ValueError("x"))
    assert is_transient_error(TransientError("no capacity"))


def test_backoff_is_exponential_capped_and_jittered(sleep: RecordingSleep) -> None:
    # Given an operation throttled 4 times, jitter drawing half of each ceiling
    operation = FailingOperation([throttling() for _ in range(4)])
    retrier = Retrier(
        policy=RetryPolicy(max_attempts=5, base_delay_seconds=1, max_delay_seconds=3, max_total_delay_seconds=100),
        sleep=sleep,
        random=lambda: 0.5,
    )

    # When it is called
    result = retrier.call(operation, description="test")

    # Then delays were half of 1, 2, then the 3 s cap twice
    assert result == "done"
    assert sleep.calls == [0.5, 1.0, 1.5, 1.5]


def test_gives_up_after_max_attempts(sleep: RecordingSleep) -> None:
    # Given an operation that is always throttled
    operation = FailingOperation([throttling() for _ in range(10)])
    retrier = Retrier(policy=RetryPolicy(max_attempts=3), sleep=sleep, random=lambda: 1.0)

    # When / Then the last error is raised after 3 attempts
    with pytest.raises(ClientError, match="ThrottlingException"):
        retrier.call(operation, description="test")
    assert operation.calls == 3


def test_gives_up_before_exceeding_the_total_delay(sleep: RecordingSleep) -> None:
    # Given a total delay budget of 5 s and full-ceiling jitter (1, 2, 4, ...)
    operation = FailingOperation([throttling() for _ in range(10)])
    retrier = Retrier(
        policy=RetryPolicy(max_attempts=10, base_delay_seconds=1, max_delay_seconds=60, max_total_delay_seconds=5),
        sleep=sleep,
        random=lambda: 1.0,
    )

    # When / Then it stops once the next sleep would pass the budget
    with pytest.raises(ClientError):
        retrier.call(operation, description="test")
    assert sleep.calls == [1.0, 2.0]


def test_permanent_error_is_not_retried(sleep: RecordingSleep) -> None:
    # Given an operation failing permanently
    operation = FailingOperation([ValueError("bad")])

    # When / Then it raises at once
    with pytest.raises(ValueError, match="bad"):
        Retrier(sleep=sleep).call(operation, description="test")
    assert sleep.calls == []
