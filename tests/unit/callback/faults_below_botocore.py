"""Fault injection *below* botocore: its serialization, validation, retries and parsing all still run.

A ``before-send`` handler sits where botocore hands the signed HTTP request to the network. It can
raise the connection errors botocore's HTTP layer raises (the request never left, or the answer was
lost after the server acted on it), or let the request through. Clients talk to real HTTP servers on
loopback: the local mode's Glue/SageMaker emulator and moto's DynamoDB server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from pipeline_callback.clients import client_config

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def loopback_client(service: str, endpoint_url: str) -> Any:
    """A client configured exactly as production's (pipeline_callback.clients), pointed at loopback."""
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        config=client_config(service),
        **FAKE_CREDENTIALS,
    )


@dataclass
class Fault:
    operation: str
    kind: str  # "not-sent" | "answer-lost" | "closed"
    remaining: int


@dataclass
class FaultInjector:
    """Breaks the next N HTTP exchanges of an operation; records every attempt botocore made."""

    client: Any
    faults: list[Fault] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    before: dict[str, Callable[[], None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        service_id = self.client.meta.service_model.service_id.hyphenize()
        self.client.meta.events.register(f"before-send.{service_id}", self._before_send)
        self._http = URLLib3Session()

    def fail(self, operation: str, kind: str, times: int = 1) -> FaultInjector:
        self.faults.append(Fault(operation, kind, times))
        return self

    def _before_send(self, request: Any, **kwargs: Any) -> Any:
        target = request.headers.get("X-Amz-Target", "")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).split(".")[-1]
        with self._lock:
            self.attempts.append(operation)
            fault = next((f for f in self.faults if f.operation == operation and f.remaining > 0), None)
            if fault is not None:
                fault.remaining -= 1
        hook = self.before.get(operation)
        if hook is not None:
            hook()
        if fault is None:
            return None  # botocore sends it as usual
        if fault.kind == "not-sent":
            raise EndpointConnectionError(endpoint_url=request.url)
        # The server receives and acts on the request; the answer never reaches the client.
        self._http.send(request)
        if fault.kind == "closed":
            raise ConnectionClosedError(endpoint_url=request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    def count(self, operation: str) -> int:
        return sum(1 for attempt in self.attempts if attempt == operation)
