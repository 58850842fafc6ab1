"""The ML pipeline, locally: the registered definition executed against local S3, Glue, ECS and SageMaker.

Same code as in AWS: `pipeline_definition` builds the definition, the callback handler's logic receives
the queue message, `python -m fargate_task` runs and watches the Glue job, `run_prep` is the Glue
script, and glue_completion's logic answers in events mode. Only the clients and compute are local.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from app_config.settings import ApprovalConfig, DataPrepConfig, PipelineConfig
from local_mode.approval_steps import (
    ApprovalMode,
    ApprovalStepExecutor,
    CallbackRouter,
    ProcessingStepExecutor,
    RegisterModelStepExecutor,
    local_approval_system,
)
from local_mode.aws_emulator import LOCAL_ACCOUNT_ID, CallbackSteps, GlueJob, GlueService, LocalAwsEndpoint
from local_mode.callback_reliability import CallbackRecords, ReconcilerLoop, local_callback_records
from local_mode.local_compute import LocalEcs, LocalEndpoints
from local_mode.local_s3 import LocalS3
from local_mode.pipeline_runner import PipelineExecution, PipelineRunner
from local_mode.pipeline_steps import (
    CallbackStepExecutor,
    ModelStepExecutor,
    TrainingStepExecutor,
    TransformStepExecutor,
)
from local_mode.progress import Progress
from local_mode.spark_session import get_spark
from local_mode.taxi_data import GeneratedTrips, KnownAnomaly, generate_trips
from local_mode.trip_input import Staging, check_trip_input, describe_ignored, stage_trip_files
from pipeline_evaluation import AnomalyEvent, WindowsEvaluation, evaluate_windows, read_transform_output

if TYPE_CHECKING:
    from glue_scripts.taxi_prep import PrepResult

CompletionMode = Literal["poll", "events"]
RAW_BUCKET = "taxi-raw-local"
PREPARED_BUCKET = "taxi-prepared-local"
ARTIFACTS_BUCKET = "taxi-artifacts-local"
PREP_JOB_NAME = "taxi-prep-local"
CALLBACK_QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{LOCAL_ACCOUNT_ID}/taxi-callback-local"
PIPELINE_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/taxi-pipeline-local"
APPROVAL_QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{LOCAL_ACCOUNT_ID}/taxi-approval-local"
# Where the local mode stages the evaluation job's zip (the stack's asset in AWS).
EVALUATION_CODE_KEY = "code/evaluation-job.zip"
MODEL_PACKAGE_GROUP = "taxi-anomaly-local"
# The task definition's container name in AWS (cdk_constructs/prep_task.py), which the watchdog looks for.
PREP_CONTAINER_NAME = "FargateTask"
WINDOW = timedelta(minutes=30)
_LAMBDA_LOGGERS = (
    "callback_handler",
    "glue_completion",
    "task_watchdog",
    "callback_reconciler",
    "pipeline_callback",
    "approval",
    "approval_notifier",
    "approval_endpoint",
)


@dataclass(frozen=True)
class PipelineOptions:
    out: Path
    input_path: Path | None = None
    trips: int = 300_000
    seed: int = 7
    completion: CompletionMode = "poll"
    poll_seconds: float | None = None
    fail_prep: bool = False
    # Kill the Fargate task's process this long after it starts (what ECS does on out-of-memory).
    kill_task_after: float | None = None
    # Who answers ApproveResults: the local mode through the page (auto/reject) or a person (prompt).
    approval: ApprovalMode = "auto"
    # Lose the Glue completion events (events mode), as EventBridge may: the reconciler ends the step.
    drop_events: bool = False
    # How long each emulated Glue run stays STARTING before its script runs (Glue provisioning workers).
    glue_startup_seconds: float = 0.0
    # Extra default arguments of the prep Glue job (--analysis_start, --analysis_end, --max_windows).
    prep_arguments: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredWindow:
    window_start: datetime
    passengers: int
    score: float
    expected: float
    is_anomaly: bool
    event_id: int | None


@dataclass
class PipelineOutcome:
    execution: PipelineExecution
    definition: dict[str, Any]
    generated: GeneratedTrips | None = None
    staged_files: list[Path] = field(default_factory=list)
    prep: PrepResult | None = None
    scored: list[ScoredWindow] = field(default_factory=list)
    evaluation: WindowsEvaluation | None = None
    scores_csv: Path | None = None
    events_csv: Path | None = None
    known_anomalies: tuple[KnownAnomaly, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    emulator_calls: list[str] = field(default_factory=list)
    approval_mails: list[dict[str, Any]] = field(default_factory=list)
    model_packages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.execution.status == "Succeeded"


def build_definition(region: str, pipeline: PipelineConfig) -> dict[str, Any]:
    """The definition the pipeline stack registers, with local values instead of the stack's placeholders."""
    # The same JSON round trip CreatePipeline's PipelineDefinition goes through.
    return cast(dict[str, Any], json.loads(_definition_json(region, pipeline)))


@functools.cache
def _definition_json(region: str, pipeline: PipelineConfig) -> str:
    """Cached per process: building takes seconds (SDK import), and in-process reruns (tests) need the same."""
    from ml_pipeline.definition import PipelineSettings, pipeline_definition

    settings = PipelineSettings(
        pipeline_name="taxi-anomaly-local",
        region=region,
        role_arn=PIPELINE_ROLE_ARN,
        callback_queue_url=CALLBACK_QUEUE_URL,
        raw_bucket=RAW_BUCKET,
        prepared_bucket=PREPARED_BUCKET,
        artifacts_bucket=ARTIFACTS_BUCKET,
        pipeline=pipeline,
        approval_queue_url=APPROVAL_QUEUE_URL,
        evaluation_code_bucket=ARTIFACTS_BUCKET,
        evaluation_code_key=EVALUATION_CODE_KEY,
        evaluation_code_file=EVALUATION_CODE_KEY.rsplit("/", 1)[-1],
        model_package_group_name=MODEL_PACKAGE_GROUP,
    )
    return pipeline_definition(settings)


class _GlueLogger:
    """The Glue script's logger: its lines become progress, with local paths shown as s3:// URIs."""

    def __init__(self, progress: Progress, s3: LocalS3) -> None:
        self._progress, self._s3 = progress, s3

    def info(self, msg: str, /) -> None:
        self._progress.say("glue", self._s3.as_s3_text(msg))


class _ProgressLogHandler(logging.Handler):
    """Shows the in-process Lambda code's log records (handler and glue-completion logic) as progress."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(level=logging.INFO)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self._progress.say("lambda", record.getMessage())


@contextmanager
def _lambda_logs_as_progress(progress: Progress) -> Iterator[None]:
    handler = _ProgressLogHandler(progress)
    saved = []
    for name in _LAMBDA_LOGGERS:
        lambda_logger = logging.getLogger(name)
        saved.append((lambda_logger, lambda_logger.level))
        lambda_logger.addHandler(handler)
        lambda_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lambda_logger, level in saved:
            lambda_logger.removeHandler(handler)
            lambda_logger.setLevel(level)


def stage_input(
    options: PipelineOptions, s3: LocalS3, raw_prefix: str, progress: Progress
) -> tuple[GeneratedTrips | None, list[Path], Staging]:
    """Put the trips where the definition's InputLocation default points (the raw bucket's prefix)."""
    raw_uri = f"s3://{RAW_BUCKET}/{raw_prefix}"
    raw_folder = s3.path(raw_uri)
    if options.fail_prep:
        progress.say("data", f"--fail-prep: leaving {raw_uri} empty, so the Glue job fails")
        return None, [], Staging()
    if options.input_path is None:
        generated = generate_trips(raw_folder, seed=options.seed, total_trips=options.trips)
        progress.say(
            "data",
            f"generated {generated.rows:,} synthetic TLC yellow-taxi trips ({generated.windows} half-hour windows) "
            f"-> {s3.uri(generated.path)}",
        )
        for anomaly in generated.anomalies:
            progress.say("data", f"  injected {anomaly.describe()}")
        return generated, [generated.path], Staging()
    # Checked again here (main checks before Spark starts): the folder may have changed since.
    trip_input = check_trip_input(options.input_path)
    raw_folder.mkdir(parents=True, exist_ok=True)
    staged, staging = stage_trip_files(trip_input, raw_folder, raw_uri)
    progress.say(
        "data", f"staged {len(staged)} {trip_input.input_format} trip file(s) from {trip_input.root} -> {raw_uri}"
    )
    if trip_input.ignored:
        progress.say("data", describe_ignored(trip_input))
    return None, staged, staging


def run_pipeline(
    options: PipelineOptions,
    *,
    region: str,
    pipeline_config: PipelineConfig,
    data_prep: DataPrepConfig,
    definition_future: Future[dict[str, Any]],
    progress: Progress,
    approval_config: ApprovalConfig | None = None,
) -> PipelineOutcome:
    from ml_pipeline.definition import RAW_DATA_PREFIX

    timings: dict[str, float] = {}
    started = time.monotonic()
    s3 = LocalS3(options.out / "s3")
    generated, staged, staging = stage_input(options, s3, RAW_DATA_PREFIX, progress)
    timings["input data"] = time.monotonic() - started

    started = time.monotonic()
    definition = definition_future.result()
    timings["definition (wait)"] = time.monotonic() - started
    progress.say(
        "pipeline",
        f"definition built by ml_pipeline.definition.pipeline_definition: "
        f"{len(definition['Steps'])} steps, {len(definition['Parameters'])} parameters",
    )
    (options.out / "pipeline").mkdir(parents=True, exist_ok=True)
    (options.out / "pipeline" / "definition.json").write_text(json.dumps(definition, indent=2), encoding="utf-8")

    prep_results: list[PrepResult] = []
    # Glue's ErrorMessage names the staged copy; the user's own file is what they can act on.
    glue = GlueService(
        describe_error=lambda error: staging.as_user_text(s3.as_s3_text(_describe_glue_error(error))),
        startup_seconds=options.glue_startup_seconds,
    )
    glue.register_job(
        GlueJob(
            name=PREP_JOB_NAME,
            script=lambda arguments, run_id: prep_results.append(_run_prep_job(arguments, run_id, s3, progress)),
            # The feature module reaches the job through --extra-py-files in AWS; here it is importable.
            default_arguments=dict(options.prep_arguments),
        )
    )
    callbacks = CallbackSteps()
    from ml_pipeline.evaluation_bundle import write_evaluation_zip

    # Where the stack's asset would be: the Evaluate step runs this very zip.
    write_evaluation_zip(s3.path(f"s3://{ARTIFACTS_BUCKET}/{EVALUATION_CODE_KEY}"))
    expires_hours = (approval_config or ApprovalConfig()).expires_hours
    started = time.monotonic()
    pipeline_name = str(definition.get("PipelineName", "taxi-anomaly-local"))
    with (
        LocalAwsEndpoint(glue, callbacks) as endpoint,
        _lambda_logs_as_progress(progress),
        local_callback_records(data_prep, progress) as token_records,
        local_approval_system(
            s3, LocalEndpoints(url=endpoint.url, region=region).sagemaker(), region, expires_hours
        ) as approval_system,
    ):
        endpoints = LocalEndpoints(url=endpoint.url, region=region)
        glue.on_cancel = lambda run_id: get_spark().sparkContext.cancelJobGroup(run_id)
        progress.say(
            "aws", f"loopback Glue + SageMaker endpoint at {endpoint.url} (completion mode: {options.completion})"
        )
        ecs = LocalEcs(
            endpoints=endpoints,
            task_environment={
                **_task_environment(data_prep, options.poll_seconds),
                **token_records.task_environment(),
            },
            log_folder=options.out / "logs",
            progress=progress,
            container_name=PREP_CONTAINER_NAME,
            on_task_stopped=_task_watchdog_listener(endpoints, token_records, progress),
            kill_after_seconds=options.kill_task_after,
        )
        glue.add_state_change_listener(
            lambda event: progress.say(
                "glue", f"job run {event['detail']['jobRunId'][:11]}... {event['detail']['state']}"
            )
        )
        if options.completion == "events":
            glue.add_state_change_listener(
                _glue_completion_listener(endpoints, token_records, progress, drop_events=options.drop_events)
            )
        invoke_handler = _callback_handler(options.completion, ecs, endpoints, token_records, pipeline_name)
        reconciler = ReconcilerLoop(
            endpoints=endpoints,
            records=token_records,
            glue_job_name=PREP_JOB_NAME,
            ecs=ecs if options.completion == "poll" else None,
            progress=progress,
        )
        reconciler.start()

        def task_exit_code(token: str) -> int | None:
            tasks = [task for task in ecs.tasks if task.started_by == token]
            if not tasks or any(task.running for task in tasks):
                return None
            return tasks[-1].process.returncode

        models: dict[str, str] = {}
        transform = TransformStepExecutor(s3, models, progress, region, LOCAL_ACCOUNT_ID)
        progress.say("approval", f"approval endpoint (the real endpoint code) at {approval_system.endpoint_url}")
        approval_step = ApprovalStepExecutor(
            callbacks=callbacks,
            invoke_notifier=approval_system.notifier,
            read_mail=approval_system.read_mail,
            mail_folder=options.out / "approval",
            mode=options.approval,
            progress=progress,
            region=region,
        )
        registry = RegisterModelStepExecutor(s3, options.out / "pipeline" / "model-registry", region, LOCAL_ACCOUNT_ID)
        scratch = options.out / "logs" / "processing"
        scratch.mkdir(parents=True, exist_ok=True)
        runner = PipelineRunner(
            definition,
            {
                "Callback": CallbackRouter(
                    {
                        CALLBACK_QUEUE_URL: CallbackStepExecutor(
                            callbacks, invoke_handler, task_exit_code, progress, region
                        ),
                        APPROVAL_QUEUE_URL: approval_step,
                    }
                ),
                "Training": TrainingStepExecutor(s3, progress, region, LOCAL_ACCOUNT_ID),
                "Model": ModelStepExecutor(region, LOCAL_ACCOUNT_ID, models),
                "Transform": transform,
                "Processing": ProcessingStepExecutor(s3, progress, region, LOCAL_ACCOUNT_ID, scratch),
                "RegisterModel": registry,
            },
            progress,
            pipeline_name=pipeline_name,
            region=region,
            account_id=LOCAL_ACCOUNT_ID,
        )
        execution = runner.run()
        ecs.wait_all(timeout=30)
        glue.wait_for_runs(timeout=30)
        # One last pass: it closes records whose work has now ended (and stops anything left running).
        reconciler.stop()
        calls = list(endpoint.calls)
    timings["pipeline execution"] = time.monotonic() - started
    for step in execution.steps:
        if step.status != "NotStarted":
            timings[f"  {step.name} ({step.step_type})"] = step.seconds
    (options.out / "pipeline" / "execution.json").write_text(json.dumps(execution.as_api(), indent=2), encoding="utf-8")

    outcome = PipelineOutcome(
        execution=execution,
        definition=definition,
        generated=generated,
        staged_files=staged,
        prep=prep_results[-1] if prep_results else None,
        known_anomalies=generated.anomalies if generated else (),
        timings=timings,
        emulator_calls=calls,
        approval_mails=list(approval_step.mails),
        model_packages=list(registry.packages),
    )
    # The scores exist once ScoreData succeeded, whatever the later steps decide (a rejected run has them too).
    if any(step.name == "ScoreData" and step.status == "Succeeded" for step in execution.steps):
        started = time.monotonic()
        outcome.evaluation, outcome.scored = evaluate_transform_output(transform.output_files)
        outcome.scores_csv = options.out / "pipeline" / "scored_windows.csv"
        outcome.events_csv = options.out / "pipeline" / "anomaly_events.csv"
        write_scored_windows(outcome.scored, outcome.scores_csv)
        write_events(outcome.evaluation.events, outcome.events_csv)
        timings["evaluation (cut-off, events)"] = time.monotonic() - started
        progress.say(
            "pipeline",
            f"evaluated {len(outcome.scored)} windows: {outcome.evaluation.cutoff.describe()}; "
            f"{len(outcome.evaluation.events)} anomaly event(s)",
        )
    return outcome


def _run_prep_job(arguments: dict[str, str], run_id: str, s3: LocalS3, progress: Progress) -> PrepResult:
    """The Glue job's entry for one run: what `taxi_prep.main` does, minus awsglue, on the shared session."""
    from glue_scripts.taxi_prep import INPUT_OPTION_NAMES, configure_spark, input_options_from_arguments, run_prep

    progress.say("glue", f"job run {run_id[:11]}... RUNNING on local Spark")
    spark = get_spark()
    configure_spark(spark)
    # Job groups are per thread, and each run has its own thread: BatchStopJobRun cancels this group.
    spark.sparkContext.setJobGroup(run_id, f"{PREP_JOB_NAME} {run_id}", interruptOnCancel=True)
    return run_prep(
        spark,
        s3.file_uri(arguments["--input_uri"]),
        s3.file_uri(arguments["--output_uri"]),
        _GlueLogger(progress, s3),
        input_options_from_arguments(
            {name: arguments[f"--{name}"] for name in INPUT_OPTION_NAMES if f"--{name}" in arguments}
        ),
    )


def _describe_glue_error(error: BaseException) -> str:
    """Glue's ErrorMessage: the exception's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _task_environment(data_prep: DataPrepConfig, poll_seconds: float | None) -> dict[str, str]:
    """The prep task definition's environment (see cdk_constructs/prep_task.py)."""
    first_poll, interval = float(data_prep.first_poll_seconds), float(data_prep.poll_interval_seconds)
    if poll_seconds is not None:
        first_poll, interval = min(first_poll, poll_seconds), poll_seconds
    return {"POLL_INTERVAL_SECONDS": f"{interval:g}", "FIRST_POLL_SECONDS": f"{first_poll:g}"}


def _task_watchdog_listener(
    endpoints: LocalEndpoints, token_records: CallbackRecords, progress: Progress
) -> Callable[[dict[str, Any]], None]:
    """The task watchdog Lambda's logic, invoked with the task-stopped event as EventBridge would."""
    from task_watchdog.logic import WatchdogClients, WatchdogConfig, handle_task_state_change

    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    config = WatchdogConfig(
        container_name=PREP_CONTAINER_NAME, glue_job_name=PREP_JOB_NAME, records=token_records.settings
    )
    clients = WatchdogClients(sagemaker=endpoints.sagemaker(), glue=endpoints.glue(), records=token_records.records())

    def on_task_stopped(event: dict[str, Any]) -> None:
        outcome = handle_task_state_change(event, config, clients, Retrier(policy=LAMBDA_RETRY_POLICY))
        progress.say("watchdog", outcome)

    return on_task_stopped


def _callback_handler(
    completion: CompletionMode,
    ecs: LocalEcs,
    endpoints: LocalEndpoints,
    token_records: CallbackRecords,
    pipeline_name: str,
) -> Any:
    """The callback Lambda: its config loader and logic, run the way handler.py runs them for an SQS batch.

    handler.py itself is not imported: it builds its clients and config from the environment at import
    (cold start), so the in-process run calls the same logic with loopback clients instead.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from callback_handler.config import load_config
    from callback_handler.logic import Clients, HandlerRun, handle_callback_message

    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    environment = {
        "COMPLETION_MODE": completion,
        "GLUE_JOB_NAME": PREP_JOB_NAME,
        "PIPELINE_NAME": pipeline_name,
        **token_records.task_environment(),
    }
    if completion == "poll":
        environment |= {
            "CLUSTER_ARN": f"arn:aws:ecs:{endpoints.region}:{LOCAL_ACCOUNT_ID}:cluster/local",
            "TASK_DEFINITION_ARN": f"arn:aws:ecs:{endpoints.region}:{LOCAL_ACCOUNT_ID}:task-definition/taxi-prep:1",
            "CONTAINER_NAME": PREP_CONTAINER_NAME,
            "SUBNET_IDS": "subnet-local",
            "SECURITY_GROUP_IDS": "sg-local",
            "ASSIGN_PUBLIC_IP": "DISABLED",
        }
    config = load_config(environment)
    glue, sagemaker = endpoints.glue(), endpoints.sagemaker()
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    records = token_records.records()

    def record_handler(record: SQSRecord) -> None:
        clients = Clients(ecs=cast(Any, ecs), glue=glue, sagemaker=sagemaker, records=records)
        handle_callback_message(record.body, HandlerRun(config, clients, Retrier(policy=LAMBDA_RETRY_POLICY)))

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))

    return invoke


def _glue_completion_listener(
    endpoints: LocalEndpoints, token_records: CallbackRecords, progress: Progress, *, drop_events: bool
) -> Any:
    """EventBridge rule -> glue-completion Lambda: its logic with loopback clients."""
    from glue_completion.logic import handle_glue_state_change

    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    glue, sagemaker, records = endpoints.glue(), endpoints.sagemaker(), token_records.records()

    def on_state_change(event: dict[str, Any]) -> None:
        detail = event["detail"]
        progress.say(
            "events", f"Glue Job State Change: {detail['jobName']} {detail['jobRunId'][:11]}... {detail['state']}"
        )
        if drop_events:
            # EventBridge delivers on a best-effort basis; here the event is lost on purpose.
            progress.say("events", "--drop-events: the event is lost; the reconciler must end the step")
            return
        outcome = handle_glue_state_change(
            event,
            PREP_JOB_NAME,
            glue=glue,
            sagemaker=sagemaker,
            records=records,
            retrier=Retrier(policy=LAMBDA_RETRY_POLICY),
        )
        progress.say("lambda", f"glue-completion: {outcome}")

    return on_state_change


def evaluate_transform_output(output_files: list[Path]) -> tuple[WindowsEvaluation, list[ScoredWindow]]:
    """Read the joined transform output and decide: cut-off, flags, events (pipeline_evaluation)."""
    lines: list[str] = []
    for output_file in output_files:
        lines.extend(output_file.read_text(encoding="utf-8").splitlines())
    windows = read_transform_output(lines, source=", ".join(path.name for path in output_files))
    evaluation = evaluate_windows(windows.window_starts, windows.observed, windows.expected, windows.scores)
    scored = [
        ScoredWindow(
            window_start=start,
            passengers=round(observed),
            score=score,
            expected=expected,
            is_anomaly=is_anomaly,
            event_id=event_id,
        )
        for start, observed, expected, score, is_anomaly, event_id in zip(
            windows.window_starts,
            windows.observed,
            windows.expected,
            windows.scores,
            evaluation.is_anomaly,
            evaluation.event_ids,
            strict=True,
        )
    ]
    return evaluation, scored


SCORED_WINDOWS_HEADER = ("window_start", "passengers", "score", "is_anomaly", "expected", "event_id")
EVENTS_HEADER = (
    "event_id",
    "start",
    "end",
    "windows",
    "peak_window",
    "peak_score",
    "observed_passengers",
    "expected_passengers",
    "change_percent",
    "peak_observed",
    "peak_expected",
)
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def write_scored_windows(scored: list[ScoredWindow], path: Path) -> None:
    """The first three columns are the ones this file always had; the decision columns follow."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(SCORED_WINDOWS_HEADER)
        for window in scored:
            writer.writerow(
                [
                    f"{window.window_start:{_TIME_FORMAT}}",
                    window.passengers,
                    f"{window.score:.6f}",
                    int(window.is_anomaly),
                    f"{window.expected:.1f}",
                    "" if window.event_id is None else window.event_id,
                ]
            )


def write_events(events: tuple[AnomalyEvent, ...], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(EVENTS_HEADER)
        for event in events:
            change = event.change
            writer.writerow(
                [
                    event.event_id,
                    f"{event.start:{_TIME_FORMAT}}",
                    f"{event.end:{_TIME_FORMAT}}",
                    event.windows,
                    f"{event.peak_window:{_TIME_FORMAT}}",
                    f"{event.peak_score:.6f}",
                    round(event.observed),
                    round(event.expected),
                    "" if change is None else f"{100 * change:+.0f}",
                    round(event.peak_observed),
                    round(event.peak_expected),
                ]
            )
