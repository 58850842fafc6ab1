"""The approval endpoint: one Lambda function URL request (payload format 2.0) in, one response out.

Rules (each has a test in tests/unit/approval):
- `GET /a/<reference>` shows the confirmation page and writes nothing.
- Only `POST /a/<reference>` from that page decides: a same-origin form post (Sec-Fetch-Site, or Origin
  for non-browser clients) that carries the page's form token; anything else is refused untouched.
- The decision is a conditional write (approval.store): of two clicks, exactly one wins; the loser's
  page says who decided what, and when.
- A malformed or unknown reference gets a plain 404, without saying which; an expired one a 410.
- Every response carries the strict security headers (approval.page.SECURITY_HEADERS).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from approval import page
from approval.decisions import (
    APPROVE,
    DECISION_STATUS,
    MAX_APPROVER_CHARS,
    MAX_COMMENT_CHARS,
    clean_text,
    decide,
    describe,
)
from approval.mail import APPROVAL_PATH_PREFIX
from approval.references import is_well_formed, reference_key
from approval.store import PENDING, ApprovalStore
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_FORM_BYTES = 4096
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def respond(status: int, body: str, content_type: str = "text/html; charset=utf-8", **extra: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**page.SECURITY_HEADERS, "Content-Type": content_type, **extra},
        "body": body,
        "isBase64Encoded": False,
    }


def not_found() -> dict[str, Any]:
    return respond(404, "Not Found\n", "text/plain; charset=utf-8")


def handle_request(
    event: dict[str, Any], *, store: ApprovalStore, sagemaker: SageMakerClient, retrier: Retrier, clock: Clock
) -> dict[str, Any]:
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    path = str(event.get("rawPath") or "")
    if not path.startswith(APPROVAL_PATH_PREFIX):
        return not_found()
    reference = path[len(APPROVAL_PATH_PREFIX) :]
    if not is_well_formed(reference):
        return not_found()
    if method not in ("GET", "POST"):
        return respond(405, "Method Not Allowed\n", "text/plain; charset=utf-8", Allow="GET, POST")
    request = store.get_by_reference(reference)
    if request is None:
        return not_found()
    now = int(clock())
    if method == "GET":
        if request.is_open_for_decision(now):
            preferred = (event.get("queryStringParameters") or {}).get("decision")
            return respond(200, page.confirmation_page(request, preferred))
        return respond(410 if _expired(request, now) else 200, page.outcome_page(request, describe(request, now)))
    refusal = _refuse_post(event)
    if refusal is not None:
        logger.warning("Refused a POST for %s: %s", request.execution_arn, refusal[1])
        return respond(refusal[0], f"{refusal[1]}\n", "text/plain; charset=utf-8")
    form = _form(event)
    decision = form.get("decision", "")
    approver = clean_text(form.get("approver", ""), MAX_APPROVER_CHARS)
    comment = clean_text(form.get("comment", ""), MAX_COMMENT_CHARS)
    if decision not in DECISION_STATUS:
        return respond(400, "The form must say approve or reject.\n", "text/plain; charset=utf-8")
    if not approver:
        return respond(400, "Please give your name or e-mail.\n", "text/plain; charset=utf-8")
    if not request.is_open_for_decision(now):
        return respond(410 if _expired(request, now) else 409, page.outcome_page(request, describe(request, now)))
    outcome = decide(
        store,
        sagemaker,
        retrier,
        key=reference_key(reference),
        decision=decision,
        decided_by=approver,
        comment=comment,
        via="link",
        now=now,
        form_token=form.get("form_token", ""),
    )
    if not outcome.won and outcome.request.status == PENDING and outcome.request.is_open_for_decision(now):
        # Still pending, so the condition that failed was the form token: not a post from the page.
        return respond(403, "This form is not from the confirmation page.\n", "text/plain; charset=utf-8")
    status = 200 if outcome.won else (410 if _expired(outcome.request, now) else 409)
    logger.info(
        "Decision %s on %s by %s: %s",
        decision,
        outcome.request.execution_arn,
        approver,
        "won" if outcome.won else f"lost ({outcome.request.status})",
    )
    return respond(status, page.outcome_page(outcome.request, outcome.message))


def _expired(request: Any, now: int) -> bool:
    return bool(request.status == "EXPIRED" or (request.status == PENDING and now >= request.expires_at))


def _refuse_post(event: dict[str, Any]) -> tuple[int, str] | None:
    """Only a form post from the endpoint's own page: same origin, form encoding, small body."""
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        return 415, "Unsupported Media Type"
    host = headers.get("host") or str(event.get("requestContext", {}).get("domainName", ""))
    scheme = headers.get("x-forwarded-proto", "https")
    own_origin = f"{scheme}://{host}"
    origin = headers.get("origin")
    fetch_site = headers.get("sec-fetch-site")
    # A foreign Origin is always refused. Browsers label every request with Sec-Fetch-Site, and under
    # our `Referrer-Policy: no-referrer` they send `Origin: null` even for a same-origin form post
    # (the headless-browser test shows it), so for a browser Sec-Fetch-Site decides; any other client
    # must name our origin.
    if origin not in (None, "null", own_origin):
        return 403, "Forbidden: the decision must come from the confirmation page"
    if fetch_site is not None:
        if fetch_site != "same-origin":
            return 403, "Forbidden: cross-site form posts are refused"
    elif origin != own_origin:
        return 403, "Forbidden: the decision must come from the confirmation page"
    if len(_raw_body(event)) > MAX_FORM_BYTES:
        return 413, "Payload Too Large"
    return None


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode()


def _form(event: dict[str, Any]) -> dict[str, str]:
    fields = parse_qs(_raw_body(event).decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items() if values}


__all__ = ["APPROVE", "handle_request"]
