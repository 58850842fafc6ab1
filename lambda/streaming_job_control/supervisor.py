"""The streaming job's supervisor: keep one run going while the run policy wants one, within a failure budget.

Invoked on a schedule (every few minutes) and by EventBridge when a run of the job changes state. Each invocation
looks at the job's recent runs and does at most one thing:

- the job should not run now (run policy) but a run is active: stop it;
- the job should run and a run is active (or still stopping): nothing;
- the job should run and none is active: start one, unless
  - ``failure_limit`` runs ended FAILED or ERROR within ``failure_window`` (Glue's own retries included): give up,
    so a broken job does not restart forever (the ``GaveUp`` metric is alarmed on until an operator acts or the
    failures age out of the window);
  - the last run FAILED less than ``restart_grace`` ago and Glue will retry it itself (``MaxRetries``): wait;
  - the last run was STOPPED less than ``restart_grace`` ago: wait (a deploy or Glue's maintenance restart is
    starting the next run).

Every invocation emits metrics (dimension ``JobName``): ``JobDesired`` and ``JobDown`` (1/0), ``RunsStarted``,
``RunsStopped``, ``GaveUp``, and, for a state change that ended a run the policy wanted running (anything but
STOPPED), ``UnexpectedRunEnd``. Glue's "Glue Job State Change" events are best effort, so the schedule is what
guarantees a check; the events only make it faster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from streaming_job_control.logic import ACTIVE_STATES, MAX_RUN_PAGES
from streaming_job_control.run_policy import RunPolicy, decide

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_glue import GlueClient

logger = Logger(child=True)

FAILURE_STATES = frozenset({"FAILED", "ERROR"})
# A streaming run is meant to run until stopped: ending any other way is news for the operator.
UNEXPECTED_END_STATES = frozenset({"FAILED", "ERROR", "TIMEOUT", "SUCCEEDED", "EXPIRED"})
TERMINAL_STATES = UNEXPECTED_END_STATES | {"STOPPED"}
STATE_CHANGE_DETAIL_TYPE = "Glue Job State Change"
BATCH_STOP_LIMIT = 25


@dataclass(frozen=True)
class SupervisorSettings:
    job_name: str
    policy: RunPolicy
    glue_max_retries: int = 1
    failure_limit: int = 5
    failure_window: timedelta = timedelta(hours=6)
    restart_grace: timedelta = timedelta(minutes=3)


class MetricsSink(Protocol):
    def put_metrics(self, values: Mapping[str, float], timestamp: datetime) -> None: ...


@dataclass(frozen=True)
class CloudWatchMetricsSink:
    cloudwatch: CloudWatchClient
    namespace: str
    job_name: str

    def put_metrics(self, values: Mapping[str, float], timestamp: datetime) -> None:
        data: list[MetricDatumTypeDef] = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "JobName", "Value": self.job_name}],
                "Value": float(value),
                "Unit": "Count",
                "Timestamp": timestamp,
            }
            for name, value in values.items()
        ]
        self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data)


@dataclass
class SupervisorReport:
    should_run: bool
    why: str
    action: str = "none"  # none | started | stopped | waiting | gave_up
    detail: str = ""
    active_run_id: str | None = None
    started_run_id: str | None = None
    stopped_run_ids: list[str] = field(default_factory=list)
    failures_in_window: int = 0
    unexpected_end: bool = False

    @property
    def job_down(self) -> bool:
        return self.should_run and self.active_run_id is None and self.started_run_id is None

    def metrics(self) -> dict[str, float]:
        return {
            "JobDesired": 1 if self.should_run else 0,
            "JobDown": 1 if self.job_down else 0,
            "RunsStarted": 1 if self.started_run_id else 0,
            "RunsStopped": len(self.stopped_run_ids),
            "GaveUp": 1 if self.action == "gave_up" else 0,
            "UnexpectedRunEnd": 1 if self.unexpected_end else 0,
        }


def recent_runs(glue: GlueClient, job_name: str) -> list[dict[str, Any]]:
    """The job's runs, newest first (GetJobRuns documents no order, so sort by start time)."""
    runs: list[dict[str, Any]] = []
    pages = glue.get_paginator("get_job_runs").paginate(JobName=job_name)
    for page_number, page in enumerate(pages, start=1):
        runs.extend(dict(run) for run in page.get("JobRuns", []))
        if page_number >= MAX_RUN_PAGES:
            break
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(runs, key=lambda run: run.get("StartedOn") or epoch, reverse=True)


def _ended_at(run: Mapping[str, Any]) -> datetime | None:
    ended = run.get("CompletedOn") or run.get("LastModifiedOn")
    return ended if isinstance(ended, datetime) else None


def _state_change(trigger: Mapping[str, Any] | None, job_name: str) -> Mapping[str, Any] | None:
    if not trigger or trigger.get("detail-type") != STATE_CHANGE_DETAIL_TYPE:
        return None
    detail = trigger.get("detail") or {}
    return detail if detail.get("jobName") == job_name else None


def supervise(
    *,
    glue: GlueClient,
    events: EventBridgeClient | None,
    metrics: MetricsSink,
    settings: SupervisorSettings,
    now: datetime,
    trigger: Mapping[str, Any] | None = None,
) -> SupervisorReport:
    decision = decide(settings.policy, now, events)
    report = SupervisorReport(should_run=decision.should_run, why=decision.why)
    change = _state_change(trigger, settings.job_name)
    if change is not None and decision.should_run and change.get("state") in UNEXPECTED_END_STATES:
        report.unexpected_end = True
        logger.warning(
            "A run the policy wants running ended",
            extra={"job_run_id": change.get("jobRunId"), "state": change.get("state"), "glue": change.get("message")},
        )

    runs = recent_runs(glue, settings.job_name)
    active = [run for run in runs if run.get("JobRunState") in ACTIVE_STATES]
    report.active_run_id = active[0]["Id"] if active else None
    if not decision.should_run:
        if active:
            _stop(glue, settings.job_name, [run["Id"] for run in active], report)
    else:
        _keep_running(glue, settings, runs, now, report)
    metrics.put_metrics(report.metrics(), timestamp=now)
    logger.info("Supervised", extra={"job_name": settings.job_name, **_log_fields(report)})
    return report


def _keep_running(
    glue: GlueClient, settings: SupervisorSettings, runs: list[dict[str, Any]], now: datetime, report: SupervisorReport
) -> None:
    if report.active_run_id is not None:
        return
    if any(run.get("JobRunState") == "STOPPING" for run in runs):
        report.action, report.detail = "waiting", "a run is still stopping"
        return
    window_start = now - settings.failure_window
    failures = [
        run
        for run in runs
        if run.get("JobRunState") in FAILURE_STATES and (_ended_at(run) or now) >= window_start
    ]
    report.failures_in_window = len(failures)
    if len(failures) >= settings.failure_limit:
        report.action = "gave_up"
        report.detail = (
            f"{len(failures)} runs failed within {settings.failure_window}; not restarting until they age out. "
            f"Last error: {failures[0].get('ErrorMessage', 'unknown')}"
        )
        return
    ended = [run for run in runs if run.get("JobRunState") in TERMINAL_STATES]
    if ended:
        last = max(ended, key=lambda run: _ended_at(run) or datetime.min.replace(tzinfo=UTC))
        recently = (_ended_at(last) or now) > now - settings.restart_grace
        state = last.get("JobRunState")
        if recently and state == "FAILED" and int(last.get("Attempt") or 0) < settings.glue_max_retries:
            report.action, report.detail = "waiting", f"Glue retries run {last['Id']} itself (MaxRetries)"
            return
        if recently and state == "STOPPED":
            report.action, report.detail = "waiting", f"run {last['Id']} was stopped on purpose moments ago"
            return
    try:
        report.started_run_id = glue.start_job_run(JobName=settings.job_name)["JobRunId"]
        report.action = "started"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConcurrentRunsExceededException":
            raise
        # Someone else (a deploy, Glue's retry) started a run between our look and our start.
        report.action, report.detail = "none", "another run started meanwhile"


def _stop(glue: GlueClient, job_name: str, run_ids: list[str], report: SupervisorReport) -> None:
    for start in range(0, len(run_ids), BATCH_STOP_LIMIT):
        response = glue.batch_stop_job_run(JobName=job_name, JobRunIds=run_ids[start : start + BATCH_STOP_LIMIT])
        report.stopped_run_ids.extend(item["JobRunId"] for item in response.get("SuccessfulSubmissions", []))
    report.action = "stopped"
    report.active_run_id = None


def _log_fields(report: SupervisorReport) -> dict[str, object]:
    return {
        "should_run": report.should_run,
        "why": report.why,
        "action": report.action,
        "detail": report.detail,
        "active_run_id": report.active_run_id,
        "started_run_id": report.started_run_id,
        "stopped_run_ids": report.stopped_run_ids,
        "failures_in_window": report.failures_in_window,
    }
