"""A real DynamoDB API on loopback for the local mode and the tests: moto's server, in a thread.

DynamoDB Local is not published on a package registry (AWS ships it as a download), so the durable
records (callback tokens, approval requests) are kept in moto's server mode instead. It speaks the
DynamoDB wire protocol over HTTP, so the code under test uses an ordinary boto3 client with an
``endpoint_url``, and conditional writes, TTL attributes and errors are moto's, not ours. It also
reaches subprocesses (the local Fargate task) through ``AWS_ENDPOINT_URL_DYNAMODB``.

The server binds 127.0.0.1 on an ephemeral port: several runs can share one machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class DynamoDbServer:
    endpoint_url: str

    def environment(self) -> dict[str, str]:
        """Variables that point a subprocess's boto3 DynamoDB clients at this server (botocore's service endpoint)."""
        return {"AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url}


class _OneRequestAtATime:
    """moto's backend does not lock: two concurrent conditional writes to one item could both pass their
    condition, which DynamoDB never allows ("conditional writes ... succeed only if the item attributes
    meet one or more expected conditions"). Serving one request at a time keeps each write atomic, so the
    emulation is never more lenient than DynamoDB."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _QuietRequestHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per DynamoDB call would drown the local mode's progress output


class _AtomicMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def loopback_dynamodb() -> Iterator[DynamoDbServer]:
    """Start a moto server on 127.0.0.1:<free port> for the block.

    moto keeps its data per process, not per server: callers use table names of their own (or delete
    their tables) when several servers run in one process, as the tests and in-process local runs do.
    """
    server = _AtomicMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield DynamoDbServer(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
