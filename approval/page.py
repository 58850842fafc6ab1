"""The confirmation page behind the links: plain HTML, no script, strict security headers.

GET renders it and changes nothing (mail scanners and link previews fetch every link); only the form's
POST decides. The one stylesheet is inline and allowed by its hash, so the CSP has no 'unsafe-inline'
and no script source at all.
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import UTC, datetime

from approval.mail import event_lines, execution_id, key_figure_lines
from approval.store import ApprovalRequest

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.4rem}pre{background:#f4f4f4;padding:.8rem;white-space:pre-wrap;font-size:.85rem}"
    "label{display:block;margin:.8rem 0 .2rem}input,textarea{width:100%;font:inherit;padding:.3rem}"
    "button{font:inherit;padding:.5rem 1.2rem;margin:1rem .6rem 0 0;cursor:pointer}"
    ".approve{background:#1a7f37;color:#fff;border:0}.reject{background:#b42318;color:#fff;border:0}"
    ".preferred{outline:3px solid #0969da}.note{color:#555;font-size:.85rem}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _at(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch or 0, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _details(request: ApprovalRequest) -> str:
    text = "\n".join(
        [
            f"Run:             {request.execution_arn}",
            f"Report:          {request.report_uri}",
            *key_figure_lines(request.summary),
            "",
            "Top events (observed vs expected passengers):",
            *event_lines(request.summary),
        ]
    )
    return f"<pre id=\"details\">{html.escape(text)}</pre>"


def confirmation_page(request: ApprovalRequest, preferred: str | None) -> str:
    """The page a link opens while the request is pending: the details, two buttons, nothing decided yet."""
    approve_class = "approve preferred" if preferred == "approve" else "approve"
    reject_class = "reject preferred" if preferred == "reject" else "reject"
    body = (
        f"<h1>Approve pipeline run {html.escape(execution_id(request.execution_arn))}?</h1>"
        f"{_details(request)}"
        "<form method=\"post\">"
        f"<input type=\"hidden\" name=\"form_token\" value=\"{html.escape(request.form_token)}\">"
        "<label for=\"approver\">Your name or e-mail (recorded with the decision)</label>"
        "<input id=\"approver\" name=\"approver\" required maxlength=\"100\" autocomplete=\"email\">"
        "<label for=\"comment\">Comment (the reason, if you reject)</label>"
        "<textarea id=\"comment\" name=\"comment\" rows=\"3\" maxlength=\"256\"></textarea>"
        f"<button type=\"submit\" id=\"approve\" name=\"decision\" value=\"approve\" class=\"{approve_class}\">"
        "Approve and register the model</button>"
        f"<button type=\"submit\" id=\"reject\" name=\"decision\" value=\"reject\" class=\"{reject_class}\">"
        "Reject the run</button>"
        "</form>"
        f"<p class=\"note\">This request expires at {_at(request.expires_at)}. It can be used once.</p>"
    )
    return _document("Approve pipeline run", body)


def outcome_page(request: ApprovalRequest, message: str) -> str:
    """After a decision, or when the request was already decided or has expired."""
    body = (
        f"<h1 id=\"outcome\">{html.escape(message)}</h1>"
        f"{_details(request)}"
        f"<p class=\"note\">Status: {html.escape(request.status)}"
        + (f", by {html.escape(request.decided_by)} at {_at(request.decided_at)}" if request.decided_by else "")
        + "</p>"
    )
    return _document("Pipeline run approval", body)


def plain_page(message: str) -> str:
    return _document(message, f"<h1>{html.escape(message)}</h1>")
