"""A tiny loopback AWS endpoint for the two services the prep step's code calls: Glue and SageMaker.

botocore speaks JSON 1.1 to both (`X-Amz-Target: AWSGlue.StartJobRun`, `SageMaker.SendPipeline...`), so
plain boto3 clients work against it when their endpoint URL points here (`AWS_ENDPOINT_URL_GLUE`,
`AWS_ENDPOINT_URL_SAGEMAKER` for subprocesses, `endpoint_url=` in-process).

- Glue: StartJobRun / GetJobRun / GetJobRuns / BatchStopJobRun. A run executes the job's script function
  in a background thread of this process (the one shared SparkSession): RUNNING, then SUCCEEDED, or
  FAILED with the exception as ErrorMessage. Terminal states are announced to listeners, which is how
  EventBridge's "Glue Job State Change" is emulated.
- SageMaker: SendPipelineExecutionStepSuccess / Failure resolve the callback step waiting on the token.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

GlueScript = Callable[[dict[str, str], str], None]
"""Runs one Glue job run: (resolved arguments, run id) -> None; raising fails the run."""
StateChangeListener = Callable[[dict[str, Any]], None]


class AwsError(Exception):
    """Answered as a JSON 1.1 error: HTTP 400 with `__type` = code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class GlueJob:
    name: str
    script: GlueScript
    default_arguments: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _JobRun:
    job_name: str
    run_id: str
    arguments: dict[str, str]
    started_on: datetime
    state: str = "RUNNING"
    completed_on: datetime | None = None
    error_message: str | None = None
    stop_requested: bool = False

    def as_api(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "Id": self.run_id,
            "JobName": self.job_name,
            "JobRunState": self.state,
            "Arguments": dict(self.arguments),
            "StartedOn": self.started_on.timestamp(),
            "LastModifiedOn": (self.completed_on or self.started_on).timestamp(),
            "Attempt": 0,
            "GlueVersion": "5.0",
        }
        if self.completed_on:
            described["CompletedOn"] = self.completed_on.timestamp()
            described["ExecutionTime"] = int((self.completed_on - self.started_on).total_seconds())
        if self.error_message:
            described["ErrorMessage"] = self.error_message
        return described


class GlueService:
    """Glue's job-run API over registered jobs whose runs execute in-process."""

    def __init__(
        self,
        *,
        describe_error: Callable[[BaseException], str] = lambda error: f"{type(error).__name__}: {error}",
        startup_seconds: float = 0.0,
    ) -> None:
        # A Glue run is STARTING while Glue provisions its workers, before the script runs; 0 skips that.
        self._startup_seconds = startup_seconds
        self._jobs: dict[str, GlueJob] = {}
        self._runs: dict[str, _JobRun] = {}
        self._lock = threading.Lock()
        # One run at a time: the runs share one SparkSession and two cores.
        self._execution_lock = threading.Lock()
        self._listeners: list[StateChangeListener] = []
        self._threads: list[threading.Thread] = []
        self._describe_error = describe_error
        self.on_cancel: Callable[[str], None] = lambda run_id: None

    def register_job(self, job: GlueJob) -> None:
        self._jobs[job.name] = job

    def add_state_change_listener(self, listener: StateChangeListener) -> None:
        self._listeners.append(listener)

    def start_job_run(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(request)
        arguments = {**job.default_arguments, **(request.get("Arguments") or {})}
        run = _JobRun(job_name=job.name, run_id="jr_" + secrets.token_hex(32), arguments=arguments, started_on=_now())
        if self._startup_seconds > 0:
            run.state = "STARTING"
        with self._lock:
            self._runs[run.run_id] = run
        thread = threading.Thread(target=self._execute, args=(job, run), name=f"glue-{run.run_id[:11]}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"JobRunId": run.run_id}

    def get_job_run(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(request)
        run = self._runs.get(str(request.get("RunId")))
        if run is None or run.job_name != job.name:
            raise AwsError("EntityNotFoundException", f"Job run {request.get('RunId')} not found for job {job.name}")
        with self._lock:
            return {"JobRun": run.as_api()}

    def get_job_runs(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(request)
        with self._lock:
            runs = [run.as_api() for run in self._runs.values() if run.job_name == job.name]
        runs.sort(key=lambda run: run["StartedOn"], reverse=True)
        page_size = int(request.get("MaxResults") or 100)
        offset = int(request.get("NextToken") or 0)
        page: dict[str, Any] = {"JobRuns": runs[offset : offset + page_size]}
        if offset + page_size < len(runs):
            page["NextToken"] = str(offset + page_size)
        return page

    def batch_stop_job_run(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(request)
        stopped, errors = [], []
        for run_id in request.get("JobRunIds") or []:
            run = self._runs.get(run_id)
            if run is None or run.job_name != job.name:
                errors.append(
                    {
                        "JobName": job.name,
                        "JobRunId": run_id,
                        "ErrorDetail": {
                            "ErrorCode": "EntityNotFoundException",
                            "ErrorMessage": f"Job run {run_id} not found",
                        },
                    }
                )
                continue
            with self._lock:
                stopping = run.state in ("STARTING", "RUNNING", "WAITING")
                if stopping:
                    run.stop_requested = True
                    run.state = "STOPPING"
            if stopping:
                # Glue ends the whole run; Spark's cancel ends only the jobs running now, so keep
                # cancelling until the run's thread is done (no later write may slip through).
                threading.Thread(target=self._cancel_until_done, args=(run,), daemon=True).start()
            stopped.append({"JobName": job.name, "JobRunId": run_id})
        return {"SuccessfulSubmissions": stopped, "Errors": errors}

    def _cancel_until_done(self, run: _JobRun) -> None:
        while run.completed_on is None:
            self.on_cancel(run.run_id)
            time.sleep(0.05)

    def wait_for_runs(self, timeout: float) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    def _job(self, request: dict[str, Any]) -> GlueJob:
        name = str(request.get("JobName") or "")
        if name not in self._jobs:
            raise AwsError("EntityNotFoundException", f"Job {name} not found")
        return self._jobs[name]

    def _execute(self, job: GlueJob, run: _JobRun) -> None:
        if self._startup_seconds > 0:
            started = time.monotonic()
            while time.monotonic() - started < self._startup_seconds and not run.stop_requested:
                time.sleep(0.05)
            with self._lock:
                if run.state == "STARTING":
                    run.state = "RUNNING"
        with self._execution_lock:
            try:
                if run.stop_requested:
                    raise InterruptedError("stopped before it started")
                job.script(dict(run.arguments), run.run_id)
                state, message = ("STOPPED", None) if run.stop_requested else ("SUCCEEDED", None)
            except Exception as error:
                state, message = ("STOPPED", None) if run.stop_requested else ("FAILED", self._describe_error(error))
        with self._lock:
            run.state, run.error_message, run.completed_on = state, message, _now()
        event = glue_state_change_event(run)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("Glue state change listener failed for run %s", run.run_id)


def glue_state_change_event(run: _JobRun) -> dict[str, Any]:
    """EventBridge's 'Glue Job State Change' event for a finished run (shape of the AWS sample event)."""
    severity = "INFO" if run.state == "SUCCEEDED" else "ERROR" if run.state == "FAILED" else "WARN"
    message = "Job run succeeded" if run.state == "SUCCEEDED" else run.error_message or f"Job run {run.state.lower()}"
    return {
        "version": "0",
        "id": secrets.token_hex(16),
        "detail-type": "Glue Job State Change",
        "source": "aws.glue",
        "account": LOCAL_ACCOUNT_ID,
        "time": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [],
        "detail": {
            "jobName": run.job_name,
            "severity": severity,
            "state": run.state,
            "jobRunId": run.run_id,
            "message": message,
        },
    }


@dataclass(frozen=True)
class StepOutcome:
    succeeded: bool
    output_parameters: dict[str, str] = field(default_factory=dict)
    failure_reason: str = ""


class CallbackSteps:
    """Callback tokens of waiting steps; SendPipelineExecutionStep{Success,Failure} resolve them."""

    def __init__(self) -> None:
        self._waiting: dict[str, str] = {}  # token -> execution ARN
        self._outcomes: dict[str, tuple[StepOutcome, str]] = {}  # token -> (outcome, client request token)
        self._condition = threading.Condition()

    def expect(self, token: str, execution_arn: str) -> None:
        with self._condition:
            self._waiting[token] = execution_arn

    def wait(self, token: str, timeout: float) -> StepOutcome | None:
        with self._condition:
            self._condition.wait_for(lambda: token in self._outcomes, timeout=timeout)
            resolved = self._outcomes.get(token)
            return resolved[0] if resolved else None

    def send_success(self, request: dict[str, Any]) -> dict[str, Any]:
        outputs = {str(item["Name"]): str(item["Value"]) for item in request.get("OutputParameters") or []}
        return self._resolve(request, StepOutcome(succeeded=True, output_parameters=outputs))

    def send_failure(self, request: dict[str, Any]) -> dict[str, Any]:
        reason = str(request.get("FailureReason") or "")
        if len(reason) > 256:
            raise AwsError("ValidationException", "FailureReason must have length less than or equal to 256")
        return self._resolve(request, StepOutcome(succeeded=False, failure_reason=reason))

    def _resolve(self, request: dict[str, Any], outcome: StepOutcome) -> dict[str, Any]:
        token = str(request.get("CallbackToken") or "")
        request_token = str(request.get("ClientRequestToken") or "")
        with self._condition:
            execution_arn = self._waiting.get(token)
            if execution_arn is None:
                raise AwsError("ResourceNotFound", f"Callback token {token} does not exist")
            previous = self._outcomes.get(token)
            if previous is not None:
                # A retried request with the same idempotency token gets the same answer.
                if request_token and previous[1] == request_token:
                    return {"PipelineExecutionArn": execution_arn}
                raise AwsError("ConflictException", f"Step for callback token {token} has already been completed")
            self._outcomes[token] = (outcome, request_token)
            self._condition.notify_all()
        return {"PipelineExecutionArn": execution_arn}


LOCAL_ACCOUNT_ID = "000000000000"
LOCAL_REGION = "us-east-1"


class LocalAwsEndpoint:
    """The HTTP server on 127.0.0.1 (random port) answering Glue and SageMaker JSON 1.1 calls."""

    def __init__(self, glue: GlueService, callbacks: CallbackSteps) -> None:
        self.glue = glue
        self.callbacks = callbacks
        self.calls: list[str] = []
        self._operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "AWSGlue.StartJobRun": glue.start_job_run,
            "AWSGlue.GetJobRun": glue.get_job_run,
            "AWSGlue.GetJobRuns": glue.get_job_runs,
            "AWSGlue.BatchStopJobRun": glue.batch_stop_job_run,
            "SageMaker.SendPipelineExecutionStepSuccess": callbacks.send_success,
            "SageMaker.SendPipelineExecutionStepFailure": callbacks.send_failure,
        }
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b"{}"
                status, payload = endpoint.dispatch(self.headers.get("X-Amz-Target", ""), body)
                encoded = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(encoded)))
                self.send_header("x-amzn-RequestId", secrets.token_hex(16))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the progress output says what happens; per-request lines would drown it

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def dispatch(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.calls.append(target)
        operation = self._operations.get(target)
        if operation is None:
            return 400, {"__type": "UnknownOperationException", "message": f"local mode does not emulate {target}"}
        try:
            request = json.loads(body or b"{}")
            return 200, operation(request)
        except AwsError as error:
            return 400, {"__type": error.code, "message": error.message}
        except Exception as error:
            logger.exception("Emulated %s failed", target)
            return 500, {"__type": "InternalFailure", "message": f"{type(error).__name__}: {error}"}

    def __enter__(self) -> LocalAwsEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _now() -> datetime:
    return datetime.now(UTC)
