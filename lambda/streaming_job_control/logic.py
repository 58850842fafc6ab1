"""Keep one run of a Glue streaming job alive, with the deployed code, for the lifetime of a CloudFormation resource.

- Create/Update: start a run if the run policy says the job should be running now and none is active.
  Update restarts the job when what it runs changed: the resource's properties carry ``RunConfigHash`` (a hash
  of the script and the job's settings, computed at synth) and the job's deploy-time values (``Watched``:
  bucket, stream ARN, ...), so a new script, new arguments or a new frequency restarts the run with them.
  A run always takes the job's own (just updated) default arguments: the supervisor starts runs the same way.
- Delete: stop every active run and wait until none is left, so nothing keeps billing after ``cdk destroy``.
  A job that no longer exists counts as stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from streaming_job_control.run_policy import RunPolicy, decide

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_glue import GlueClient

logger = Logger(child=True)

ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "WAITING"})
# A run being stopped still bills until it reaches a final state.
NOT_YET_STOPPED_STATES = ACTIVE_STATES | {"STOPPING"}
BATCH_STOP_LIMIT = 25  # BatchStopJobRun accepts at most 25 run ids
MAX_RUN_PAGES = 10  # active runs are the newest; older pages hold only finished runs


class StopTimeoutError(RuntimeError):
    """Runs were asked to stop but were still running when the wait budget ran out."""


@dataclass(frozen=True)
class WaitPolicy:
    timeout_seconds: float = 600.0
    poll_seconds: float = 15.0


@dataclass(frozen=True)
class JobSpec:
    """What a run executes: a change in any of it means the running run is stale."""

    job_name: str
    run_config_hash: str = ""
    watched: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any] | None) -> JobSpec:
        properties = properties or {}
        job_name = str(properties.get("JobName") or "").strip()
        if not job_name:
            raise ValueError("ResourceProperties.JobName is required")
        watched = properties.get("Watched") or {}
        if not isinstance(watched, Mapping):
            raise ValueError("ResourceProperties.Watched must be a map of strings")
        return cls(job_name, str(properties.get("RunConfigHash") or ""), {str(k): str(v) for k, v in watched.items()})


def physical_resource_id(job_name: str) -> str:
    return f"streaming-job-{job_name}"


def runs_in_states(glue: GlueClient, job_name: str, states: frozenset[str]) -> list[str]:
    run_ids: list[str] = []
    pages = glue.get_paginator("get_job_runs").paginate(JobName=job_name)
    for page_number, page in enumerate(pages, start=1):
        run_ids.extend(run["Id"] for run in page.get("JobRuns", []) if run.get("JobRunState") in states)
        if page_number >= MAX_RUN_PAGES:
            break
    return run_ids


def ensure_running(glue: GlueClient, job_name: str) -> str:
    """The id of an active run of the job, starting one (with the job's default arguments) only when none is."""
    active = runs_in_states(glue, job_name, ACTIVE_STATES)
    if active:
        logger.info("Job already running", extra={"job_name": job_name, "job_run_id": active[0]})
        return active[0]
    try:
        run_id = glue.start_job_run(JobName=job_name)["JobRunId"]
    except ClientError as error:
        # Another caller (the supervisor) started it between our check and our start: use that run.
        # MaxConcurrentRuns is 1, so Glue itself refuses a second run.
        if _error_code(error) != "ConcurrentRunsExceededException":
            raise
        active = runs_in_states(glue, job_name, NOT_YET_STOPPED_STATES)
        if not active:
            raise
        return active[0]
    logger.info("Job run started", extra={"job_name": job_name, "job_run_id": run_id})
    return run_id


def stop_runs_and_wait(
    glue: GlueClient,
    job_name: str,
    *,
    policy: WaitPolicy,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Stop every active run and wait until none is left; returns the ids asked to stop.

    A run that starts while we wait (a supervisor invocation already in flight) is stopped too. A job that does
    not exist has nothing running. Raises :class:`StopTimeoutError` when runs are still running after
    ``policy.timeout_seconds``.
    """
    asked: list[str] = []
    settled = False
    try:
        deadline = clock() + policy.timeout_seconds
        while True:
            to_stop = [run_id for run_id in runs_in_states(glue, job_name, ACTIVE_STATES) if run_id not in asked]
            for start in range(0, len(to_stop), BATCH_STOP_LIMIT):
                response = glue.batch_stop_job_run(
                    JobName=job_name, JobRunIds=to_stop[start : start + BATCH_STOP_LIMIT]
                )
                for error in response.get("Errors", []):
                    # Typically a run that finished on its own meanwhile; the wait below is the real check.
                    logger.warning("Run could not be stopped", extra={"job_name": job_name, "error": error})
            if to_stop:
                logger.info("Stopping job runs", extra={"job_name": job_name, "job_run_ids": to_stop})
                asked.extend(to_stop)
            remaining = runs_in_states(glue, job_name, NOT_YET_STOPPED_STATES) if asked else []
            if not remaining:
                if not asked or (settled and not to_stop):
                    return asked
                # Look once more after a poll: an in-flight supervisor invocation may have started a run.
                settled = True
            else:
                settled = False
            if clock() + policy.poll_seconds > deadline:
                if not remaining:
                    return asked
                raise StopTimeoutError(
                    f"Glue job {job_name} runs {sorted(remaining)} were still running after "
                    f"{policy.timeout_seconds:.0f}s"
                )
            sleep(policy.poll_seconds)
    except ClientError as error:
        if _error_code(error) == "EntityNotFoundException":
            logger.info("Job does not exist; nothing to stop", extra={"job_name": job_name})
            return asked
        raise


def handle_event(
    event: Mapping[str, Any],
    glue: GlueClient,
    *,
    policy: WaitPolicy,
    events: EventBridgeClient | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """CDK Provider ``onEvent`` contract: returns the physical id and, on Create/Update, ``JobRunId``.

    ``JobRunId`` is empty when the run policy says the job should not run now (the supervisor starts it later).
    """
    request_type = event["RequestType"]
    if request_type == "Delete":
        job_name = str((event.get("ResourceProperties") or {}).get("JobName") or "").strip()
        if job_name:
            stop_runs_and_wait(glue, job_name, policy=policy, sleep=sleep, clock=clock)
        return {"PhysicalResourceId": event.get("PhysicalResourceId") or physical_resource_id(job_name)}

    properties = event.get("ResourceProperties")
    spec = JobSpec.from_properties(properties)
    if request_type == "Update":
        old = JobSpec.from_properties(event.get("OldResourceProperties"))
        if old != spec:
            # Streaming runs read their script and arguments once, so any change means a restart.
            logger.info(
                "The job's code or settings changed: restarting",
                extra={"job_name": spec.job_name, "old_hash": old.run_config_hash, "new_hash": spec.run_config_hash},
            )
            stop_runs_and_wait(glue, old.job_name, policy=policy, sleep=sleep, clock=clock)
    elif request_type != "Create":
        raise ValueError(f"unknown RequestType {request_type!r}")
    decision = decide(RunPolicy.from_properties(properties), now(), events)
    logger.info("Run policy", extra={"job_name": spec.job_name, "should_run": decision.should_run, "why": decision.why})
    if not decision.should_run:
        stop_runs_and_wait(glue, spec.job_name, policy=policy, sleep=sleep, clock=clock)
        run_id = ""
    else:
        run_id = ensure_running(glue, spec.job_name)
    return {"PhysicalResourceId": physical_resource_id(spec.job_name), "Data": {"JobRunId": run_id}}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
