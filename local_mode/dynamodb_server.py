"""A real DynamoDB API on loopback for the local mode and the tests: moto's server, in a thread.

DynamoDB Local is not published on a package registry (AWS ships it as a download), so the durable
records (callback tokens, approval requests) are kept in moto's server mode instead. It speaks the
DynamoDB wire protocol over HTTP, so the code under test uses an ordinary boto3 client with an
``endpoint_url``, and conditional writes, TTL attributes and errors are moto's, not ours. It also
reaches subprocesses (the local Fargate task) through ``AWS_ENDPOINT_URL_DYNAMODB``.

The server binds 127.0.0.1 on an ephemeral port: several runs can share one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class DynamoDbServer:
    endpoint_url: str

    def environment(self) -> dict[str, str]:
        """Variables that point a subprocess's boto3 DynamoDB clients at this server (botocore's service endpoint)."""
        return {"AWS_ENDPOINT_URL_DYNAMODB": self.endpoint_url}


@contextmanager
def loopback_dynamodb() -> Iterator[DynamoDbServer]:
    """Start a moto server on 127.0.0.1:<free port>; every table it holds is gone when the block ends."""
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield DynamoDbServer(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
