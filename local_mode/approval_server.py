"""The approval endpoint's real code served over HTTP on 127.0.0.1, the way a Lambda function URL serves it.

Each HTTP request becomes a function URL event (payload format 2.0: rawPath, rawQueryString, lower-case
headers, base64 body flag, requestContext.http.method/domainName) for `approval_endpoint.logic`, and
its response dict becomes the HTTP response. Nothing is added or relaxed on the way: the security
headers, status codes and bodies are the endpoint's own.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from approval.store import ApprovalStore
from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

LOOPBACK = "127.0.0.1"
# Function URLs accept request bodies up to 6 MB; nothing here comes near it.
MAX_BODY_BYTES = 6 * 1024 * 1024


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, host: str) -> dict[str, Any]:
    parts = urlsplit(target)
    query = {name: ",".join(values) for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    lower_headers = {name.lower(): value for name, value in headers.items()}
    lower_headers.setdefault("x-forwarded-proto", "http")
    return {
        "version": "2.0",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "queryStringParameters": query or None,
        "headers": lower_headers,
        "requestContext": {
            "domainName": host,
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": LOOPBACK},
            "timeEpoch": int(time.time() * 1000),
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


class LocalApprovalEndpoint:
    """`with LocalApprovalEndpoint(store, sagemaker) as endpoint:` serves endpoint.url until the block ends."""

    def __init__(self, store: ApprovalStore, sagemaker: Any, *, clock: Callable[[], float] = time.time) -> None:
        from approval_endpoint.logic import handle_request

        self.requests: list[tuple[str, str, int]] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_error(413)
                    return
                body = self.rfile.read(length) if length else b""
                host = self.headers.get("Host") or f"{LOOPBACK}:{served.port}"
                event = function_url_event(self.command, self.path, dict(self.headers.items()), body, host)
                response = handle_request(
                    event, store=store, sagemaker=sagemaker, retrier=Retrier(policy=LAMBDA_RETRY_POLICY), clock=clock
                )
                payload = str(response.get("body") or "").encode()
                served.requests.append((self.command, urlsplit(self.path).path, int(response["statusCode"])))
                self.send_response(int(response["statusCode"]))
                for name, value in (response.get("headers") or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815 - http.server names

            def log_message(self, format: str, *args: Any) -> None:
                pass  # paths carry references; the progress output says what happened instead

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="approval-endpoint", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> LocalApprovalEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
