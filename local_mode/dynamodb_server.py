"""A real DynamoDB API on loopback for the local mode and the tests: moto's server, in a thread.

DynamoDB Local is not published on a package registry (AWS ships it as a download), so the durable
records (callback tokens, approval requests) are kept in moto's server mode instead. It speaks the
DynamoDB wire protocol over HTTP, so the code under test uses an ordinary boto3 client with an
``endpoint_url``, and conditional writes, TTL attributes and errors are moto's, not ours. It also
reaches subprocesses (the local Fargate task) through ``AWS_ENDPOINT_URL_DYNAMODB``.

moto keeps its state per process, not per server, so this module runs one server per process and
every :func:`loopback_dynamodb` block shares it (and its tables): give tables distinct names. When the
last block ends, the state is reset and the server stops.

The server binds 127.0.0.1 on an ephemeral port: several runs can share one machine.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
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
    condition, which DynamoDB never allows ("a conditional write succeeds only if the item attributes meet
    one or more expected conditions"). Serving one request at a time keeps each write atomic, so the
    emulation is never more lenient than DynamoDB (tests/unit/callback: concurrent claims grant one)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _AtomicMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


_lock = threading.Lock()
_running: tuple[ThreadedMotoServer, DynamoDbServer] | None = None
_users = 0


@contextmanager
def loopback_dynamodb() -> Iterator[DynamoDbServer]:
    """The process's moto server on 127.0.0.1:<free port>, started on first use; reset and stopped after the last."""
    global _running, _users
    with _lock:
        if _running is None:
            # werkzeug logs every request at INFO; the local mode's console is for the user.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server: ThreadedMotoServer = _AtomicMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            _running = (server, DynamoDbServer(endpoint_url=f"http://{host}:{port}"))
        _users += 1
        endpoint = _running[1]
    try:
        yield endpoint
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _running is not None:
                server, running = _running
                _running = None
                reset = urllib.request.Request(running.endpoint_url + "/moto-api/reset", method="POST")  # noqa: S310
                with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - our own loopback server
                    pass
                server.stop()
