"""Run the prep Glue job for one callback token, watch it, and answer the callback step.

Exit codes: 0 once the step has been answered (or was already answered), 1 when the outcome
could not be reported, 2 when the environment is invalid (after failing the step if possible).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from pipeline_callback.callback import report_outcome
from pipeline_callback.environment import ConfigError, required_variable
from pipeline_callback.errors import describe_error
from pipeline_callback.faults import is_transient
from pipeline_callback.glue import (
    CALLBACK_TOKEN_ARGUMENT,
    INPUT_URI_ARGUMENT,
    OUTPUT_URI_ARGUMENT,
    PIPELINE_EXECUTION_ARN_ARGUMENT,
    SUCCEEDED,
    TERMINAL_STATES,
    glue_failure_reason,
)
from pipeline_callback.glue_runs import start_run_once
from pipeline_callback.message import is_s3_uri, is_valid_callback_token
from pipeline_callback.outputs import success_output_parameters
from pipeline_callback.retry import SUCCESS_REPORT_RETRY_POLICY, Retrier, RetryPolicy
from pipeline_callback.token_records import FAILURE, SUCCESS, TokenRecords, load_record_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_sagemaker import SageMakerClient

logger = logging.getLogger(__name__)

EXIT_REPORTED = 0
EXIT_NOT_REPORTED = 1
EXIT_BAD_CONFIG = 2
DEFAULT_POLL_INTERVAL_SECONDS = 15.0
DEFAULT_FIRST_POLL_SECONDS = 5.0
# No run waits forever: after this long the run is stopped and the step failed (the Glue job's own
# timeout plus a margin, set by the construct).
DEFAULT_MAX_WAIT_SECONDS = 3 * 3600.0
PREP_TASK = "prep-task"
# Sleep in slices this long so a SIGTERM is acted on promptly (ECS kills the task 30 s later by default).
STOP_CHECK_SECONDS = 1.0
# A task has no timeout to respect, and Glue frees a concurrent-run slot only when a run ends.
TASK_RETRY_POLICY = RetryPolicy(
    max_attempts=6, base_delay_seconds=2.0, max_delay_seconds=30.0, max_total_delay_seconds=120.0
)


# The task's own name for the shared environment error.
TaskConfigError = ConfigError


@dataclass(frozen=True)
class TaskSettings:
    token: str
    input_location: str
    output_location: str
    glue_job_name: str
    pipeline_execution_arn: str | None
    poll_interval_seconds: float
    first_poll_seconds: float
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS


def load_settings(environ: Mapping[str, str]) -> TaskSettings:
    token = environ.get("token", "").strip()
    if not is_valid_callback_token(token):
        raise TaskConfigError("environment variable token must be 10 alphanumeric characters")
    input_location = required_variable(environ, "inputLocation")
    output_location = required_variable(environ, "outputLocation")
    for name, value in (("inputLocation", input_location), ("outputLocation", output_location)):
        if not is_s3_uri(value):
            raise TaskConfigError(f"environment variable {name} must be an s3://bucket/key URI, got {value!r}")
    return TaskSettings(
        token=token,
        input_location=input_location,
        output_location=output_location,
        glue_job_name=required_variable(environ, "glue_job_name"),
        pipeline_execution_arn=environ.get("pipelineExecutionArn", "").strip() or None,
        poll_interval_seconds=_seconds(environ, "POLL_INTERVAL_SECONDS", DEFAULT_POLL_INTERVAL_SECONDS, minimum=0.1),
        first_poll_seconds=_seconds(environ, "FIRST_POLL_SECONDS", DEFAULT_FIRST_POLL_SECONDS, minimum=0.0),
        max_wait_seconds=_seconds(
            environ, "MAX_WAIT_SECONDS", DEFAULT_MAX_WAIT_SECONDS, minimum=1.0, maximum=7 * 86400.0
        ),
    )


def _seconds(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float = 3600.0
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TaskConfigError(f"environment variable {name} must be a number of seconds, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise TaskConfigError(
            f"environment variable {name} must be between {minimum} and {maximum:g} seconds, got {raw!r}"
        )
    return value


def main(
    environ: Mapping[str, str],
    glue: GlueClient,
    sagemaker: SageMakerClient,
    dynamodb: DynamoDBClient,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    *,
    stop_requested: threading.Event | None = None,
    random_fraction: Callable[[], float] = random.random,
) -> int:
    """Run the prep step end to end and return the process exit code.

    SIGTERM (ECS StopTask, spot reclaim, scale-in) sets `stop_requested`; tests may pass their own event.
    """
    stop_requested = stop_requested or threading.Event()
    retrier = Retrier(policy=TASK_RETRY_POLICY, sleep=sleep, random=random_fraction)
    restore_signal_handler = _handle_sigterm(stop_requested)
    try:
        token = environ.get("token", "").strip()
        if not is_valid_callback_token(token):
            logger.error("Cannot run or report: environment variable token must be 10 alphanumeric characters")
            return EXIT_BAD_CONFIG
        try:
            records = load_record_settings(environ).records(dynamodb)
        except TaskConfigError as error:
            logger.error("Invalid task environment, cannot record or report: %s", error)
            return EXIT_BAD_CONFIG
        try:
            settings = load_settings(environ)
        except TaskConfigError as error:
            logger.error("Invalid task environment: %s", error)
            _report_failure(records, sagemaker, token, f"Prep task misconfigured: {error}", retrier)
            return EXIT_BAD_CONFIG
        return PrepTaskRun(settings, glue, sagemaker, records, retrier, sleep, clock, stop_requested).run()
    finally:
        restore_signal_handler()


def _handle_sigterm(stop_requested: threading.Event) -> Callable[[], None]:
    """Install a SIGTERM handler that sets `stop_requested`; returns a function restoring the previous one."""
    if threading.current_thread() is not threading.main_thread():
        logger.warning("Not on the main thread: SIGTERM will not be handled")
        return lambda: None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        logger.warning("SIGTERM received: stopping the Glue run and failing the step")
        stop_requested.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _report_failure(
    records: TokenRecords,
    sagemaker: SageMakerClient,
    token: str,
    reason: str,
    retrier: Retrier,
    *,
    work_ended: bool = True,
) -> int:
    try:
        report_outcome(
            records,
            sagemaker,
            token,
            outcome=FAILURE,
            reason=reason,
            decided_by=PREP_TASK,
            retrier=retrier,
            work_ended=work_ended,
        )
    except Exception as error:
        logger.error("Could not report failure for token %s: %s (reason was: %s)", token, describe_error(error), reason)
        return EXIT_NOT_REPORTED
    return EXIT_REPORTED


class StopRequestedError(Exception):
    """SIGTERM arrived while waiting."""


class DeadlinePassedError(Exception):
    """The run did not end within MAX_WAIT_SECONDS."""


@dataclass
class PrepTaskRun:
    settings: TaskSettings
    glue: GlueClient
    sagemaker: SageMakerClient
    records: TokenRecords
    retrier: Retrier
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    stop_requested: threading.Event
    last_state: str = "not started"

    def run(self) -> int:
        settings = self.settings
        if self.stop_requested.is_set():
            return self._fail("prep task stopped (SIGTERM) before starting the Glue job run")
        try:
            run_id = self._start_job_run()
        except Exception as error:
            return self._fail(f"Could not start Glue job {settings.glue_job_name}: {describe_error(error)}")
        self.last_state = "STARTING"
        logger.info("Started Glue job run %s of %s (token %s)", run_id, settings.glue_job_name, settings.token)
        try:
            record = self.records.record_glue_run(settings.token, run_id)
        except Exception as error:
            # The run carries the token as an argument, so the watchdog and the reconciler still find it.
            logger.error("Could not record Glue run %s for token %s: %s", run_id, settings.token, describe_error(error))
        else:
            if record.stop_requested:
                self._stop_job_run(run_id)
                return self._fail(f"the execution was stopped; Glue job run {run_id} was asked to stop", ended=False)

        try:
            state, error_message = self._wait_for_end(run_id)
        except StopRequestedError:
            self._stop_job_run(run_id)
            return self._fail(
                f"prep task stopped (SIGTERM) while Glue job run {run_id} was {self.last_state}; "
                "the run was asked to stop",
                ended=False,
            )
        except DeadlinePassedError:
            self._stop_job_run(run_id)
            return self._fail(
                f"Glue job run {run_id} was still {self.last_state} after {settings.max_wait_seconds:.0f}s; "
                "the run was asked to stop",
                ended=False,
            )
        except Exception as error:
            # Without a way to watch the run nobody would report it: stop it and fail the step.
            self._stop_job_run(run_id)
            return self._fail(f"Lost track of Glue job run {run_id}: {describe_error(error)}", ended=False)

        observed_at = self.clock()
        if state == SUCCEEDED:
            exit_code, outcome = self._succeed()
        else:
            reason = glue_failure_reason(run_id, state, error_message)
            exit_code, outcome = self._fail_with_outcome(reason)
        logger.info(
            "callback_latency_seconds=%.3f run_id=%s state=%s callback=%s",
            self.clock() - observed_at,
            run_id,
            state,
            outcome,
        )
        return exit_code

    def _start_job_run(self) -> str:
        arguments = {
            INPUT_URI_ARGUMENT: self.settings.input_location,
            OUTPUT_URI_ARGUMENT: self.settings.output_location,
            # The token on the run lets the watchdog and the reconciler find it if this task dies.
            CALLBACK_TOKEN_ARGUMENT: self.settings.token,
        }
        if self.settings.pipeline_execution_arn:
            arguments[PIPELINE_EXECUTION_ARN_ARGUMENT] = self.settings.pipeline_execution_arn
        return start_run_once(self.glue, self.settings.glue_job_name, arguments, self.retrier)

    def _wait_for_end(self, run_id: str) -> tuple[str, str | None]:
        """Poll until the run reaches a terminal state: first after FIRST_POLL_SECONDS, then backing off."""
        delay = self.settings.first_poll_seconds
        deadline = self.clock() + self.settings.max_wait_seconds
        while True:
            self._wait(delay)
            if self.clock() > deadline:
                raise DeadlinePassedError
            try:
                job_run = self.retrier.call(
                    lambda: self.glue.get_job_run(JobName=self.settings.glue_job_name, RunId=run_id)["JobRun"],
                    description="Glue GetJobRun",
                )
            except Exception as error:
                if not is_transient(error):
                    raise
                # A network outage must not stop a healthy run: look again at the next poll.
                logger.warning("Glue job run %s: status unknown for now (%s)", run_id, describe_error(error))
                delay = self.settings.poll_interval_seconds
                continue
            self.last_state = job_run.get("JobRunState", "UNKNOWN")
            logger.info("Glue job run %s is %s", run_id, self.last_state)
            if self.last_state in TERMINAL_STATES:
                return self.last_state, job_run.get("ErrorMessage")
            delay = min(self.settings.poll_interval_seconds, max(delay * 2, 1.0))

    def _wait(self, seconds: float) -> None:
        remaining = seconds
        while remaining > 0 and not self.stop_requested.is_set():
            step = min(STOP_CHECK_SECONDS, remaining)
            self.sleep(step)
            remaining -= step
        if self.stop_requested.is_set():
            raise StopRequestedError

    def _stop_job_run(self, run_id: str) -> None:
        try:
            response = self.retrier.call(
                lambda: self.glue.batch_stop_job_run(JobName=self.settings.glue_job_name, JobRunIds=[run_id]),
                description="Glue BatchStopJobRun",
            )
        except Exception as error:
            logger.error("Could not stop Glue job run %s: %s", run_id, describe_error(error))
            return
        for item in response.get("Errors", []):
            logger.error("Could not stop Glue job run %s: %s", run_id, item.get("ErrorDetail", {}).get("ErrorMessage"))
        if response.get("SuccessfulSubmissions"):
            logger.info("Asked Glue to stop job run %s", run_id)

    def _succeed(self) -> tuple[int, str]:
        outputs = success_output_parameters(self.settings.output_location)
        try:
            # The work is done: keep trying far longer than for anything else before giving up.
            report = report_outcome(
                self.records,
                self.sagemaker,
                self.settings.token,
                outcome=SUCCESS,
                outputs=outputs,
                decided_by=PREP_TASK,
                retrier=self.retrier.with_policy(SUCCESS_REPORT_RETRY_POLICY),
                work_ended=True,
            )
        except Exception as error:
            # The record holds the decided success: the watchdog and the reconciler deliver it.
            logger.error("Could not report success for token %s: %s", self.settings.token, describe_error(error))
            return EXIT_NOT_REPORTED, "not reported"
        if report.outcome != SUCCESS:
            return EXIT_REPORTED, f"step already answered {report.outcome}"
        if "already_reported" in report.note:
            return EXIT_REPORTED, "token already used"
        return EXIT_REPORTED, "success sent" if report.sent else "already answered"

    def _fail(self, reason: str, *, ended: bool = True) -> int:
        return self._fail_with_outcome(reason, ended=ended)[0]

    def _fail_with_outcome(self, reason: str, *, ended: bool = True) -> tuple[int, str]:
        logger.error("Failing the step (token %s): %s", self.settings.token, reason)
        exit_code = _report_failure(
            self.records, self.sagemaker, self.settings.token, reason, self.retrier, work_ended=ended
        )
        return exit_code, "failure sent" if exit_code == EXIT_REPORTED else "not reported"
