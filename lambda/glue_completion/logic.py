"""Turn a finished Glue run of the prep job into the callback step's success or failure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_callback.callback import report_outcome

# ConfigError is part of this module's interface (load_config raises it).
from pipeline_callback.environment import ConfigError as ConfigError
from pipeline_callback.environment import required_variable
from pipeline_callback.glue import (
    CALLBACK_TOKEN_ARGUMENT,
    OUTPUT_URI_ARGUMENT,
    SUCCEEDED,
    TERMINAL_STATES,
    glue_failure_reason,
)
from pipeline_callback.message import is_s3_uri, is_valid_callback_token
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import Retrier
from pipeline_callback.token_records import FAILURE, SUCCESS, RecordSettings, TokenRecords, load_record_settings

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)


GLUE_COMPLETION = "glue-completion"


@dataclass(frozen=True)
class GlueCompletionConfig:
    glue_job_name: str
    records: RecordSettings


def load_config(environ: Mapping[str, str]) -> GlueCompletionConfig:
    return GlueCompletionConfig(
        glue_job_name=required_variable(environ, "GLUE_JOB_NAME"), records=load_record_settings(environ)
    )


def handle_glue_state_change(
    event: Mapping[str, Any],
    glue_job_name: str,
    *,
    glue: GlueClient,
    sagemaker: SageMakerClient,
    records: TokenRecords,
    retrier: Retrier,
) -> str:
    """Act on an EventBridge 'Glue Job State Change' event; returns a short description of what happened.

    EventBridge delivers these events on a best-effort basis; the reconciler ends steps whose event is lost.
    """
    detail = event.get("detail") or {}
    job_name = detail.get("jobName")
    run_id = str(detail.get("jobRunId") or "")
    state = str(detail.get("state") or "")
    if job_name != glue_job_name:
        logger.info("Ignoring job %r (run %s): this function watches %r", job_name, run_id, glue_job_name)
        return f"ignored: other job {job_name}"
    if state not in TERMINAL_STATES:
        logger.info("Ignoring non-terminal state %s of run %s", state, run_id)
        return f"ignored: state {state}"

    job_run = retrier.call(
        lambda: glue.get_job_run(JobName=glue_job_name, RunId=run_id)["JobRun"], description="Glue GetJobRun"
    )
    arguments = job_run.get("Arguments", {})
    token = arguments.get(CALLBACK_TOKEN_ARGUMENT)
    if token is None:
        logger.info("Run %s has no %s argument (not started for a pipeline)", run_id, CALLBACK_TOKEN_ARGUMENT)
        return "ignored: run has no callback token"
    if not is_valid_callback_token(token):
        logger.error("Run %s has an invalid callback token %r; cannot report", run_id, token)
        return "ignored: invalid callback token"

    logger.info("Glue run %s of %s ended %s (token %s)", run_id, glue_job_name, state, token)

    def report(outcome: str, *, reason: str = "", outputs: list[dict[str, str]] | None = None) -> str:
        result = report_outcome(
            records,
            sagemaker,
            token,
            outcome=outcome,
            reason=reason,
            outputs=outputs,
            decided_by=GLUE_COMPLETION,
            retrier=retrier,
            work_ended=True,
        )
        return result.note

    if state == SUCCEEDED:
        output_uri = arguments.get(OUTPUT_URI_ARGUMENT)
        if is_s3_uri(output_uri):
            return f"success reported ({report(SUCCESS, outputs=success_output_parameters(output_uri))})"
        reason = f"Glue job run {run_id} SUCCEEDED but its {OUTPUT_URI_ARGUMENT} is not an s3:// URI: {output_uri!r}"
        return f"failure reported ({report(FAILURE, reason=reason)}): {reason}"

    reason = glue_failure_reason(run_id, state, detail.get("message") or job_run.get("ErrorMessage"))
    return f"failure reported ({report(FAILURE, reason=reason)}): {reason}"
