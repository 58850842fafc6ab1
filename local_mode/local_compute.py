"""Local stand-ins for the compute AWS runs our code on: ECS RunTask (a subprocess), Lambda (a call).

Only the edges are swapped: the Fargate task is the real `python -m fargate_task` with the container's
environment, and the Lambdas' logic functions get boto3 clients pointed at the loopback endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from local_mode.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# Anything that could send a subprocess to a real account is dropped from its environment.
_REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class LocalEndpoints:
    url: str
    region: str

    def _session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        )

    def glue(self) -> GlueClient:
        return self._session().client("glue", endpoint_url=self.url, config=_CLIENT_CONFIG)

    def sagemaker(self) -> SageMakerClient:
        return self._session().client("sagemaker", endpoint_url=self.url, config=_CLIENT_CONFIG)

    def subprocess_environment(self) -> dict[str, str]:
        environment = {name: value for name, value in os.environ.items() if name not in _REAL_AWS_VARIABLES}
        environment.update(FAKE_CREDENTIALS)
        environment.update(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ENDPOINT_URL_GLUE": self.url,
                "AWS_ENDPOINT_URL_SAGEMAKER": self.url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")])),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return environment


# Loopback calls either work at once or not at all: no long connect waits.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"})


@dataclass
class LocalTask:
    task_arn: str
    started_by: str
    process: subprocess.Popen[str]
    log_path: Path
    output_thread: threading.Thread
    overrides: Mapping[str, Any] = field(default_factory=dict)
    stop_requested: bool = False
    # When ECS would report the task STOPPED (its process ended and its output was drained).
    stopped_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class LocalEcs:
    """ECS RunTask/ListTasks/StopTask where a task is `python -m fargate_task` in a subprocess.

    The task definition's environment (`task_environment`) and RunTask's container overrides are merged
    the way ECS does, plus the variables that point boto3 at the loopback endpoint. When a task's process
    ends, an EventBridge-shaped "ECS Task State Change" (STOPPED) event goes to `on_task_stopped`, as
    EventBridge would deliver it to the task watchdog. `kill_after_seconds` kills every task's process
    with SIGKILL after that long, the way ECS kills an out-of-memory container.
    """

    endpoints: LocalEndpoints
    task_environment: Mapping[str, str]
    log_folder: Path
    progress: Progress
    container_name: str = "FargateTask"
    on_task_stopped: Callable[[dict[str, Any]], None] | None = None
    kill_after_seconds: float | None = None
    tasks: list[LocalTask] = field(default_factory=list)
    _by_client_token: dict[str, LocalTask] = field(default_factory=dict)

    def run_task(self, **request: Any) -> dict[str, Any]:
        client_token = str(request.get("clientToken") or "")
        if client_token in self._by_client_token:  # RunTask idempotency
            return {"tasks": [self._describe(self._by_client_token[client_token])], "failures": []}
        environment = self.endpoints.subprocess_environment()
        environment.update(self.task_environment)
        for override in (request.get("overrides") or {}).get("containerOverrides", []):
            environment.update({item["name"]: item["value"] for item in override.get("environment", [])})
        task_id = uuid.uuid4().hex
        task_arn = f"arn:aws:ecs:{self.endpoints.region}:000000000000:task/local/{task_id}"
        self.log_folder.mkdir(parents=True, exist_ok=True)
        log_path = self.log_folder / f"fargate-task-{task_id[:8]}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "fargate_task"],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output_thread = threading.Thread(target=self._watch, args=(process, log_path, task_arn), daemon=True)
        task = LocalTask(
            task_arn,
            str(request.get("startedBy") or ""),
            process,
            log_path,
            output_thread,
            request.get("overrides") or {},
        )
        self.tasks.append(task)
        if self.kill_after_seconds is not None:
            killer = threading.Timer(self.kill_after_seconds, _kill, args=(task, self.progress))
            killer.daemon = True
            killer.start()
        if client_token:
            self._by_client_token[client_token] = task
        output_thread.start()
        self.progress.say("fargate", f"task {task_id[:8]} started: python -m fargate_task (pid {process.pid})")
        return {"tasks": [self._describe(task)], "failures": []}

    def list_tasks(self, **request: Any) -> dict[str, Any]:
        started_by = request.get("startedBy")
        arns = [t.task_arn for t in self.tasks if t.running and (started_by is None or t.started_by == started_by)]
        return {"taskArns": arns}

    def stop_task(self, **request: Any) -> dict[str, Any]:
        for task in self.tasks:
            if task.task_arn == request.get("task") and task.running:
                task.stop_requested = True
                task.process.send_signal(signal.SIGTERM)  # what ECS sends first on StopTask
                return {"task": self._describe(task)}
        return {"task": {"taskArn": request.get("task"), "lastStatus": "STOPPED"}}

    def describe_tasks(self, **request: Any) -> dict[str, Any]:
        """What the reconciler asks: is the task still running, and why did it stop."""
        described = []
        for task in self.tasks:
            if task.task_arn in (request.get("tasks") or []):
                entry: dict[str, Any] = {"taskArn": task.task_arn, "lastStatus": "RUNNING"}
                if task.stopped_at is not None:
                    detail = self.stopped_event(task)["detail"]
                    entry |= {"lastStatus": "STOPPED", "stoppedAt": task.stopped_at}
                    entry |= {"stoppedReason": detail["stoppedReason"], "stopCode": detail["stopCode"]}
                described.append(entry)
        return {"tasks": described, "failures": []}

    def wait_all(self, timeout: float) -> None:
        for task in self.tasks:
            try:
                task.process.wait(timeout)
            except subprocess.TimeoutExpired:
                task.process.kill()
                task.process.wait()
            task.output_thread.join(5)

    def _describe(self, task: LocalTask) -> dict[str, Any]:
        return {"taskArn": task.task_arn, "lastStatus": "RUNNING" if task.running else "STOPPED"}

    def _watch(self, process: subprocess.Popen[str], log_path: Path, task_arn: str) -> None:
        """Relay the task's output, then report its stop the way EventBridge reports a STOPPED task."""
        assert process.stdout is not None
        with log_path.open("w", encoding="utf-8") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if not _is_console_noise(line):
                    self.progress.say("fargate", _message_part(line.rstrip()))
        process.wait()
        task = next(task for task in self.tasks if task.task_arn == task_arn)
        task.stopped_at = datetime.now(UTC)
        if self.on_task_stopped is not None:
            try:
                self.on_task_stopped(self.stopped_event(task))
            except Exception as error:  # the watchdog's failure must not take the run down with it
                self.progress.say("watchdog", f"ERROR handling the task-stopped event: {error}")

    def stopped_event(self, task: LocalTask) -> dict[str, Any]:
        """The "ECS Task State Change" event for a stopped task (shape: tests/fixtures/events)."""
        code = task.process.returncode
        # ECS reports a container killed by signal N as exit code 128 + N (SIGKILL: 137).
        exit_code = code if code >= 0 else 128 - code
        container: dict[str, Any] = {"name": self.container_name, "exitCode": exit_code, "lastStatus": "STOPPED"}
        if code < 0:
            container["reason"] = f"Container killed by {signal.Signals(-code).name}"
        region, account = self.endpoints.region, "000000000000"
        return {
            "version": "0",
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": account,
            "region": region,
            "resources": [task.task_arn],
            "detail": {
                "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/local",
                "taskArn": task.task_arn,
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
                "stopCode": "UserInitiated" if task.stop_requested else "EssentialContainerExited",
                "stoppedReason": "Task stopped by user"
                if task.stop_requested
                else "Essential container in task exited",
                "containers": [container],
                "overrides": dict(task.overrides),
            },
        }


def _kill(task: LocalTask, progress: Progress) -> None:
    if task.running:
        progress.say("fargate", f"killing task {task.task_arn.rsplit('/', 1)[-1][:8]} (SIGKILL), as ECS does on OOM")
        task.process.kill()


def _is_console_noise(log_line: str) -> bool:
    """botocore's INFO lines ("Found credentials in environment variables."): kept in the task's log file only."""
    parts = log_line.split(" ", 4)
    return len(parts) == 5 and parts[2] == "INFO" and parts[3].startswith("botocore")


def _message_part(log_line: str) -> str:
    """`2026-01-01 10:00:00,123 INFO fargate_task.runner Started ...` -> `INFO Started ...`."""
    parts = log_line.split(" ", 4)
    if len(parts) == 5 and parts[2] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "" if parts[2] == "INFO" else parts[2] + " "
        return level + parts[4]
    return log_line
