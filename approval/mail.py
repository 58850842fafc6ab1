"""The approval e-mail: an SNS message to the approvers topic (SNS sends the text to each e-mail subscriber)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from approval.report import ReportSummary
from approval.store import ApprovalRequest

# SNS Publish: "Subject ... must be ASCII text that begins with a letter, number, or punctuation mark;
# must not include line breaks or control characters; and must be less than 100 characters long."
MAX_SUBJECT_CHARS = 99
APPROVAL_PATH_PREFIX = "/a/"
# The report's method text names the cut-off and its value itself ("cut-off 1.7645 = typical ..." or
# "cut-off 1.7645: every day ..."); the mail's "Cut-off:" line already says both.
_METHOD_HEAD = re.compile(r"^\s*cut-off\s+[-+]?[0-9][0-9.eE+-]*\s*(?P<joint>[=:])\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ApprovalMail:
    subject: str
    message: str
    approve_link: str
    reject_link: str


def approval_link(endpoint_url: str, reference: str, decision: str) -> str:
    return f"{endpoint_url.rstrip('/')}{APPROVAL_PATH_PREFIX}{reference}?decision={decision}"


def execution_id(execution_arn: str) -> str:
    return execution_arn.rsplit("/", 1)[-1]


def pipeline_name(execution_arn: str) -> str:
    parts = execution_arn.split("/")
    return parts[1] if len(parts) >= 4 else "pipeline"


def compose_mail(request: ApprovalRequest, reference: str, endpoint_url: str, cli_env: str) -> ApprovalMail:
    summary = request.summary
    approve = approval_link(endpoint_url, reference, "approve")
    reject = approval_link(endpoint_url, reference, "reject")
    expires = datetime.fromtimestamp(request.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    hours = round((request.expires_at - request.created_at) / 3600)
    subject = _ascii_subject(
        f"Approve {pipeline_name(request.execution_arn)} run {execution_id(request.execution_arn)}: "
        f"{summary.event_count} anomaly events"
    )
    lines = [
        "A taxi anomaly pipeline run has finished scoring and waits for your decision.",
        "",
        f"Run:             {request.execution_arn}",
        f"Report:          {request.report_uri}",
        *key_figure_lines(summary),
        "",
        "Top events (observed vs expected passengers):",
        *event_lines(summary),
        "",
        f"Approve: {approve}",
        f"Reject:  {reject}",
        "",
        "Each link opens a confirmation page; nothing is decided until you press a button there.",
        f"The links work once and expire at {expires} ({hours} hours after this mail).",
        "Approving registers the model in the model registry; rejecting fails the run with your comment.",
        f"Operators can also decide from a shell: python -m ml_pipeline approve --env {cli_env} "
        f"{request.execution_arn}",
    ]
    return ApprovalMail(subject=subject, message="\n".join(lines) + "\n", approve_link=approve, reject_link=reject)


def key_figure_lines(summary: ReportSummary) -> list[str]:
    return [
        f"Windows scored:  {summary.rows_scored:,}",
        f"Scores:          min {summary.score_min:.3f}, median {summary.score_median:.3f}, "
        f"p99 {summary.score_p99:.3f}, max {summary.score_max:.3f}",
        f"Cut-off:         {cutoff_text(summary.cutoff, summary.cutoff_method)}",
        f"Flagged windows: {summary.flagged_windows:,} in {summary.event_count} anomaly event(s)",
    ]


def cutoff_text(value: float, method: str) -> str:
    """The cut-off and how it was found, naming "cut-off" and its value once."""
    head = _METHOD_HEAD.match(method)
    if head is None:
        return f"{value:.3f} ({method})"
    joint = " =" if head.group("joint") == "=" else ":"
    return f"{value:.3f}{joint} {method[head.end() :]}"


def event_lines(summary: ReportSummary) -> list[str]:
    if not summary.top_events:
        return ["  none: no window scored above the cut-off"]
    lines = []
    for rank, event in enumerate(summary.top_events, start=1):
        lines.append(
            f"  {rank}. {event.start} to {event.end} ({event.windows} windows), peak {event.peak_score:.3f} at "
            f"{event.peak_window}: observed {event.observed_passengers:,.0f} vs expected "
            f"{event.expected_passengers:,.0f} passengers"
        )
    return lines


def _ascii_subject(text: str) -> str:
    ascii_text = text.encode("ascii", errors="replace").decode("ascii")
    one_line = " ".join("".join(c if c.isprintable() else " " for c in ascii_text).split())
    if len(one_line) > MAX_SUBJECT_CHARS:
        one_line = one_line[: MAX_SUBJECT_CHARS - 3] + "..."
    return one_line
