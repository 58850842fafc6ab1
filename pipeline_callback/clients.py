"""How our boto3 clients retry and time out, so that our own retry rule (`faults`) is the one that counts.

- Glue: botocore must not retry at all. StartJobRun has no idempotency token, and botocore's retry
  after a lost answer (ReadTimeoutError, ConnectionClosedError) would start a second run. Our
  `Retrier` retries it only after checking that no run exists for the token.
- Everything else (SageMaker callbacks with their ClientRequestToken, ECS RunTask with its clientToken,
  DynamoDB conditional writes, which we re-read on a conflict) is safe to retry, so botocore's
  standard mode retries a few times below ours.
- Short connect/read timeouts keep one call well inside a Lambda's timeout.
"""

from __future__ import annotations

from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20

NO_RETRY_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"total_max_attempts": 1, "mode": "standard"},
)
STANDARD_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"total_max_attempts": 3, "mode": "standard"},
)


def client_config(service: str) -> Config:
    """The botocore Config for one of our clients of `service` ('glue', 'sagemaker', 'ecs', 'dynamodb')."""
    return NO_RETRY_CONFIG if service == "glue" else STANDARD_CONFIG
