"""The message SageMaker puts on the approval queue for the ApproveResults callback step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline_callback.message import STOPPING_STATUS, UnanswerableMessageError, is_s3_uri, is_valid_callback_token

# The CallbackStep's Arguments (ml_pipeline.post_scoring_steps builds them).
REPORT_URI_ARGUMENT = "report_uri"
ROWS_SCORED_ARGUMENT = "rows_scored"
EVENT_COUNT_ARGUMENT = "anomaly_events"
CUTOFF_ARGUMENT = "cutoff"
APPROVAL_ARGUMENTS = (REPORT_URI_ARGUMENT, ROWS_SCORED_ARGUMENT, EVENT_COUNT_ARGUMENT, CUTOFF_ARGUMENT)
# The step's output parameters on approval.
APPROVED_BY_OUTPUT = "approved_by"
APPROVAL_COMMENT_OUTPUT = "approval_comment"


@dataclass(frozen=True)
class ApprovalStart:
    token: str
    pipeline_execution_arn: str
    report_uri: str


@dataclass(frozen=True)
class ApprovalStop:
    token: str
    pipeline_execution_arn: str | None


@dataclass(frozen=True)
class InvalidApproval:
    token: str
    reason: str


ApprovalMessage = ApprovalStart | ApprovalStop | InvalidApproval


def parse_approval_message(body: str) -> ApprovalMessage:
    """Classify a queue message; raises UnanswerableMessageError when there is no valid token."""
    try:
        message: Any = json.loads(body)
    except (TypeError, ValueError) as error:
        raise UnanswerableMessageError(f"body is not JSON ({error})") from error
    if not isinstance(message, dict):
        raise UnanswerableMessageError(f"body is JSON {type(message).__name__}, not an object")
    token = message.get("token")
    if not is_valid_callback_token(token):
        raise UnanswerableMessageError("'token' is missing or not 10 alphanumeric characters")
    execution_arn = message.get("pipelineExecutionArn")
    execution_arn = execution_arn if isinstance(execution_arn, str) and execution_arn else None
    if message.get("status") == STOPPING_STATUS:
        return ApprovalStop(token=token, pipeline_execution_arn=execution_arn)
    if execution_arn is None:
        return InvalidApproval(token, "Invalid approval message: 'pipelineExecutionArn' is missing")
    arguments = message.get("arguments")
    if not isinstance(arguments, dict):
        return InvalidApproval(token, "Invalid approval message: 'arguments' must be an object")
    report_uri = arguments.get(REPORT_URI_ARGUMENT)
    if not is_s3_uri(report_uri):
        return InvalidApproval(
            token,
            f"Invalid approval message: 'arguments.{REPORT_URI_ARGUMENT}' must be an s3:// URI, "
            f"got {str(report_uri)[:100]!r}",
        )
    return ApprovalStart(token=token, pipeline_execution_arn=execution_arn, report_uri=report_uri)
