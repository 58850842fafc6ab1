"""Names and wording shared by everything that starts or watches the prep Glue job."""

from __future__ import annotations

INPUT_URI_ARGUMENT = "--input_uri"
OUTPUT_URI_ARGUMENT = "--output_uri"
CALLBACK_TOKEN_ARGUMENT = "--callback_token"  # noqa: S105 - an argument name, not a secret
PIPELINE_EXECUTION_ARN_ARGUMENT = "--pipeline_execution_arn"

SUCCEEDED = "SUCCEEDED"
# Every JobRunState botocore's Glue model knows, except the active ones: EXPIRED ends a run too.
UNSUCCESSFUL_STATES = frozenset({"FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"})
TERMINAL_STATES = UNSUCCESSFUL_STATES | {SUCCEEDED}
# States in which a run can still be stopped.
ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "WAITING"})
# Asked to stop, not stopped yet.
STOPPING_STATE = "STOPPING"


def glue_failure_reason(run_id: str, state: str, error_message: str | None) -> str:
    """E.g. 'Glue job run jr_x FAILED: AnalysisException: Path does not exist: ...'."""
    return f"Glue job run {run_id} {state}: {error_message or 'no error message'}"
