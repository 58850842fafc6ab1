"""Starting, finding and stopping the prep job's runs for one callback token.

Every run carries ``--callback_token``, so a run can always be found again from its token (after a
lost StartJobRun answer, a killed task, or a lost completion event).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_callback.errors import describe_error
from pipeline_callback.faults import may_have_executed
from pipeline_callback.glue import ACTIVE_STATES, CALLBACK_TOKEN_ARGUMENT
from pipeline_callback.retry import Retrier

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_glue.type_defs import GetJobRunsResponseTypeDef

logger = logging.getLogger(__name__)

# Bounds the search: 5 pages x 200 runs is far more than a day of runs of the prep job.
MAX_JOB_RUN_PAGES = 5
JOB_RUNS_PAGE_SIZE = 200


@dataclass(frozen=True)
class GlueRun:
    run_id: str
    state: str
    error_message: str | None
    arguments: Mapping[str, str]


def find_runs_for_token(
    glue: GlueClient, job_name: str, callback_token: str, retrier: Retrier, *, states: frozenset[str] | None = None
) -> list[GlueRun]:
    """The job's recent runs started for `callback_token` (optionally only in `states`), newest first."""
    matches: list[GlueRun] = []
    next_token = ""
    for _ in range(MAX_JOB_RUN_PAGES):
        page = retrier.call(
            functools.partial(_job_runs_page, glue, job_name, next_token), description="Glue GetJobRuns"
        )
        for run in page.get("JobRuns", []):
            if run.get("Arguments", {}).get(CALLBACK_TOKEN_ARGUMENT) != callback_token:
                continue
            if states is None or run.get("JobRunState") in states:
                matches.append(_glue_run(run))
        next_token = page.get("NextToken", "")
        if not next_token:
            break
    return matches


def _job_runs_page(glue: GlueClient, job_name: str, next_token: str) -> GetJobRunsResponseTypeDef:
    if next_token:
        return glue.get_job_runs(JobName=job_name, MaxResults=JOB_RUNS_PAGE_SIZE, NextToken=next_token)
    return glue.get_job_runs(JobName=job_name, MaxResults=JOB_RUNS_PAGE_SIZE)


def _glue_run(run: Mapping[str, Any]) -> GlueRun:
    return GlueRun(
        run_id=str(run["Id"]),
        state=str(run.get("JobRunState", "UNKNOWN")),
        error_message=run.get("ErrorMessage"),
        arguments=dict(run.get("Arguments", {})),
    )


def get_run(glue: GlueClient, job_name: str, run_id: str, retrier: Retrier) -> GlueRun:
    run = retrier.call(lambda: glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"], description="Glue GetJobRun")
    return _glue_run(run)


def start_run_once(glue: GlueClient, job_name: str, arguments: Mapping[str, str], retrier: Retrier) -> str:
    """StartJobRun at most once per callback token, although StartJobRun has no idempotency token.

    Before retrying after an error that may have started a run anyway (a lost answer, a 5xx), the
    token's runs are searched: an existing run is adopted instead of starting a second one. The Glue
    client must not retry by itself (see pipeline_callback.clients).
    """
    token = arguments[CALLBACK_TOKEN_ARGUMENT]

    def adopt_existing(error: BaseException) -> str | None:
        if not may_have_executed(error):
            return None
        existing = find_runs_for_token(glue, job_name, token, retrier)
        if existing:
            logger.warning(
                "StartJobRun for token %s failed (%s) but run %s exists: adopting it",
                token,
                describe_error(error),
                existing[0].run_id,
            )
            return existing[0].run_id
        return None

    return retrier.call(
        lambda: glue.start_job_run(JobName=job_name, Arguments=dict(arguments))["JobRunId"],
        description="Glue StartJobRun",
        before_retry=adopt_existing,
    )


def stop_runs(glue: GlueClient, job_name: str, run_ids: list[str], retrier: Retrier) -> list[str]:
    """Ask Glue to stop the runs; returns the errors (empty when every stop was accepted)."""
    if not run_ids:
        return []
    response = retrier.call(
        lambda: glue.batch_stop_job_run(JobName=job_name, JobRunIds=run_ids), description="Glue BatchStopJobRun"
    )
    return [
        f"stopping {item.get('JobRunId')}: {item.get('ErrorDetail', {}).get('ErrorMessage', 'unknown error')}"
        for item in response.get("Errors", [])
    ]


def stop_if_active(glue: GlueClient, job_name: str, run: GlueRun, retrier: Retrier) -> bool:
    """Stop `run` if it can still be stopped; True when a stop was requested."""
    if run.state not in ACTIVE_STATES:
        return False
    errors = stop_runs(glue, job_name, [run.run_id], retrier)
    if errors:
        raise RuntimeError("; ".join(errors))
    logger.info("Asked Glue to stop job run %s", run.run_id)
    return True
