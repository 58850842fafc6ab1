"""One rule for every component that talks to AWS: is this error worth another try?

Used by the callback handler, the Fargate task, the task watchdog, the Glue completion Lambda and
the reconciler (and meant for any later callback, such as an approval step). The API is:

- ``classify(error) -> Fault``: ``Fault.TRANSIENT`` or ``Fault.PERMANENT``, with ``Fault.reason``
  ("throttled", "connection error", ...) for logs;
- ``is_transient(error) -> bool``: the shortcut retry loops want;
- ``may_have_executed(error) -> bool``: whether a *failed* call may still have taken effect on the
  server (the request left the client and the answer was lost). Non-idempotent calls, such as Glue's
  StartJobRun, must look before they retry after such an error.

The rule looks at the error's *type* first and its AWS error *code* second:

- botocore's connection-level errors (``EndpointConnectionError``, ``ConnectTimeoutError``,
  ``ReadTimeoutError``, ``ConnectionClosedError``, ``ResponseStreamingError``, proxy errors) are
  transient: the network or the endpoint hiccuped. ``SSLError`` is permanent (a certificate or
  configuration problem does not heal by waiting). Credential errors are permanent.
- ``ClientError`` with a throttling, capacity or server-side code, or with an HTTP status of 500 or
  more, is transient. Every other code (validation, access denied, not found, conflict) is permanent.
- ``TransientError`` (raised by our own code, e.g. for ECS RunTask capacity ``failures``) is transient.
- Anything else is permanent: retrying a bug does not fix it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

THROTTLING_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
# Glue refuses a run while the job is at MaxConcurrentRuns; it frees up as runs finish.
CAPACITY_ERROR_CODES = frozenset({"ConcurrentRunsExceededException", "ResourceNumberLimitExceededException"})
SERVER_ERROR_CODES = frozenset(
    {
        "InternalServiceException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServerException",
        "OperationTimeoutException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_ERROR_CODES = THROTTLING_ERROR_CODES | CAPACITY_ERROR_CODES | SERVER_ERROR_CODES

# The request never reached the service: it cannot have taken effect.
_NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
# The request may have been received and acted on; only the answer is missing.
_ANSWER_LOST_ERRORS: tuple[type[BaseException], ...] = (
    ReadTimeoutError,
    ConnectionClosedError,
    ResponseStreamingError,
)


class TransientError(Exception):
    """Raised by our own code to ask for a retry (e.g. ECS RunTask capacity `failures`)."""


class Fault(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classification:
    fault: Fault
    reason: str

    @property
    def transient(self) -> bool:
        return self.fault is Fault.TRANSIENT


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, or '' for anything else."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "")
    return ""


def http_status(error: BaseException) -> int:
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def classify(error: BaseException) -> Classification:
    """Transient or permanent, and why (see the module docstring for the rule)."""
    if isinstance(error, TransientError):
        return Classification(Fault.TRANSIENT, "asked to retry")
    if isinstance(error, SSLError):
        return Classification(Fault.PERMANENT, "TLS error")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Classification(Fault.PERMANENT, "no credentials")
    if isinstance(error, (*_NOT_SENT_ERRORS, *_ANSWER_LOST_ERRORS, HTTPClientError)):
        return Classification(Fault.TRANSIENT, "connection error")
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in THROTTLING_ERROR_CODES:
            return Classification(Fault.TRANSIENT, "throttled")
        if code in CAPACITY_ERROR_CODES:
            return Classification(Fault.TRANSIENT, "at capacity")
        if code in SERVER_ERROR_CODES or http_status(error) >= 500:
            return Classification(Fault.TRANSIENT, "server error")
        return Classification(Fault.PERMANENT, f"AWS error {code or 'without a code'}")
    if isinstance(error, BotoCoreError):
        return Classification(Fault.PERMANENT, f"client error {type(error).__name__}")
    return Classification(Fault.PERMANENT, f"unexpected {type(error).__name__}")


def is_transient(error: BaseException) -> bool:
    return classify(error).transient


def may_have_executed(error: BaseException) -> bool:
    """True when a failed call may nevertheless have taken effect (its answer was lost, or a 5xx)."""
    if isinstance(error, _NOT_SENT_ERRORS):
        return False
    if isinstance(error, (*_ANSWER_LOST_ERRORS, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        code = error_code(error)
        # Throttling and capacity answers are refusals: nothing was done.
        if code in THROTTLING_ERROR_CODES or code in CAPACITY_ERROR_CODES:
            return False
        return code in SERVER_ERROR_CODES or http_status(error) >= 500
    return False
