"""Turning exceptions and free text into a FailureReason SageMaker accepts."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipeline_callback import faults

# SendPipelineExecutionStepFailure.FailureReason is a String256.
MAX_FAILURE_REASON_CHARS = 256
_ELLIPSIS = "..."


def describe_error(error: BaseException) -> str:
    """A readable one-line description; AWS errors show their code and message."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "UnknownError"
        message = details.get("Message") or str(error)
        return f"{code}: {message}"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError, or '' for anything else."""
    return faults.error_code(error)


def to_failure_reason(text: object) -> str:
    """Fit any text into FailureReason: valid UTF-8, one line, at most 256 characters."""
    as_text = text if isinstance(text, str) else describe_error(text) if isinstance(text, BaseException) else str(text)
    # Lone surrogates (possible in JSON input) would make botocore fail to encode the request.
    clean = as_text.encode("utf-8", errors="replace").decode("utf-8")
    single_line = " ".join(clean.split())
    if len(single_line) <= MAX_FAILURE_REASON_CHARS:
        return single_line
    return single_line[: MAX_FAILURE_REASON_CHARS - len(_ELLIPSIS)] + _ELLIPSIS
