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
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
TRIP_FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_LAMBDA_LOGGERS = (
    "callback_handler",
    "glue_completion",
    "task_watchdog",
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


@dataclass(frozen=True)
class ScoredWindow:
    window_start: datetime
    passengers: int
    score: float
    full_history: bool


@dataclass
class PipelineOutcome:
    execution: PipelineExecution
    definition: dict[str, Any]
    generated: GeneratedTrips | None = None
    staged_files: list[Path] = field(default_factory=list)
    prep: PrepResult | None = None
    scored: list[ScoredWindow] = field(default_factory=list)
    scores_csv: Path | None = None
    known_anomalies: tuple[KnownAnomaly, ...] = ()
    shingle_size: int = 1
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
) -> tuple[GeneratedTrips | None, list[Path]]:
    """Put the trips where the definition's InputLocation default points (the raw bucket's prefix)."""
    raw_folder = s3.path(f"s3://{RAW_BUCKET}/{raw_prefix}")
    if options.fail_prep:
        progress.say("data", f"--fail-prep: leaving s3://{RAW_BUCKET}/{raw_prefix} empty, so the Glue job fails")
        return None, []
    if options.input_path is None:
        generated = generate_trips(raw_folder, seed=options.seed, total_trips=options.trips)
        progress.say(
            "data",
            f"generated {generated.rows:,} synthetic TLC yellow-taxi trips ({generated.windows} half-hour windows) "
            f"-> {s3.uri(generated.path)}",
        )
        for anomaly in generated.anomalies:
            progress.say(
                "data",
                f"  injected: {anomaly.label} {anomaly.start:%Y-%m-%d %H:%M}-{anomaly.end:%H:%M} (x{anomaly.factor:g})",
            )
        return generated, [generated.path]
    source = options.input_path
    candidates = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    trip_files = [p for p in candidates if p.name.lower().endswith(TRIP_FILE_SUFFIXES)]
    raw_folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for trip_file in trip_files:
        target = raw_folder / trip_file.name
        shutil.copyfile(trip_file, target)
        staged.append(target)
    progress.say("data", f"staged {len(staged)} trip file(s) from {source} -> s3://{RAW_BUCKET}/{raw_prefix}")
    return None, staged


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
    generated, staged = stage_input(options, s3, RAW_DATA_PREFIX, progress)
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
    glue = GlueService(describe_error=lambda error: s3.as_s3_text(_describe_glue_error(error)))
    glue.register_job(
        GlueJob(
            name=PREP_JOB_NAME,
            script=lambda arguments, run_id: prep_results.append(_run_prep_job(arguments, run_id, s3, progress)),
            default_arguments={"--shingle_size": str(pipeline_config.shingle_size)},
        )
    )
    callbacks = CallbackSteps()
    from ml_pipeline.evaluation_bundle import write_evaluation_zip

    # Where the stack's asset would be: the Evaluate step runs this very zip.
    write_evaluation_zip(s3.path(f"s3://{ARTIFACTS_BUCKET}/{EVALUATION_CODE_KEY}"))
    expires_hours = (approval_config or ApprovalConfig()).expires_hours
    started = time.monotonic()
    with (
        LocalAwsEndpoint(glue, callbacks) as endpoint,
        _lambda_logs_as_progress(progress),
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
            task_environment=_task_environment(data_prep, options.poll_seconds),
            log_folder=options.out / "logs",
            progress=progress,
            container_name=PREP_CONTAINER_NAME,
            on_task_stopped=_task_watchdog_listener(endpoints, progress),
            kill_after_seconds=options.kill_task_after,
        )
        if options.completion == "events":
            glue.add_state_change_listener(_glue_completion_listener(endpoints, progress))
        invoke_handler = _callback_handler(options.completion, ecs, endpoints)

        def task_exit_code(token: str) -> int | None:
            tasks = [task for task in ecs.tasks if task.started_by == token]
            if not tasks or any(task.running for task in tasks):
                return None
            return tasks[-1].process.returncode

        pipeline_name = str(definition.get("PipelineName", "taxi-anomaly-local"))
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
        shingle_size=pipeline_config.shingle_size,
        timings=timings,
        emulator_calls=calls,
        approval_mails=list(approval_step.mails),
        model_packages=list(registry.packages),
    )
    # The scores exist once ScoreData succeeded, whatever the later steps decide (a rejected run has them too).
    if any(step.name == "ScoreData" and step.status == "Succeeded" for step in execution.steps):
        outcome.scored = _read_scores(transform.output_files, pipeline_config.shingle_size)
        outcome.scores_csv = options.out / "pipeline" / "scored_windows.csv"
        _write_scores(outcome.scored, outcome.scores_csv)
    return outcome


def _run_prep_job(arguments: dict[str, str], run_id: str, s3: LocalS3, progress: Progress) -> PrepResult:
    """The Glue job's entry for one run: what `taxi_prep.main` does, minus awsglue, on the shared session."""
    from glue_scripts.taxi_prep import configure_spark, run_prep

    progress.say("glue", f"job run {run_id[:11]}... RUNNING on local Spark")
    spark = get_spark()
    configure_spark(spark)
    # Job groups are per thread, and each run has its own thread: BatchStopJobRun cancels this group.
    spark.sparkContext.setJobGroup(run_id, f"{PREP_JOB_NAME} {run_id}", interruptOnCancel=True)
    return run_prep(
        spark,
        s3.file_uri(arguments["--input_uri"]),
        s3.file_uri(arguments["--output_uri"]),
        int(arguments["--shingle_size"]),
        _GlueLogger(progress, s3),
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


def _task_watchdog_listener(endpoints: LocalEndpoints, progress: Progress) -> Callable[[dict[str, Any]], None]:
    """The task watchdog Lambda's logic, invoked with the task-stopped event as EventBridge would."""
    from task_watchdog.logic import handle_task_state_change

    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    sagemaker = endpoints.sagemaker()

    def on_task_stopped(event: dict[str, Any]) -> None:
        outcome = handle_task_state_change(
            event, PREP_CONTAINER_NAME, sagemaker=sagemaker, retrier=Retrier(policy=LAMBDA_RETRY_POLICY)
        )
        progress.say("watchdog", outcome)

    return on_task_stopped


def _callback_handler(completion: CompletionMode, ecs: LocalEcs, endpoints: LocalEndpoints) -> Any:
    """The callback Lambda: its config loader and logic, run the way handler.py runs them for an SQS batch.

    handler.py itself is not imported: it builds its clients and config from the environment at import
    (cold start), so the in-process run calls the same logic with loopback clients instead.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from callback_handler.config import load_config
    from callback_handler.logic import handle_callback_message

    environment = {"COMPLETION_MODE": completion, "GLUE_JOB_NAME": PREP_JOB_NAME}
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

    def record_handler(record: SQSRecord) -> None:
        handle_callback_message(record.body, config, ecs=cast(Any, ecs), glue=glue, sagemaker=sagemaker)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))

    return invoke


def _glue_completion_listener(endpoints: LocalEndpoints, progress: Progress) -> Any:
    """EventBridge rule -> glue-completion Lambda: its logic with loopback clients."""
    from glue_completion.logic import handle_glue_state_change

    from pipeline_callback.retry import LAMBDA_RETRY_POLICY, Retrier

    glue, sagemaker = endpoints.glue(), endpoints.sagemaker()

    def on_state_change(event: dict[str, Any]) -> None:
        detail = event["detail"]
        progress.say(
            "events", f"Glue Job State Change: {detail['jobName']} {detail['jobRunId'][:11]}... {detail['state']}"
        )
        outcome = handle_glue_state_change(
            event, PREP_JOB_NAME, glue=glue, sagemaker=sagemaker, retrier=Retrier(policy=LAMBDA_RETRY_POLICY)
        )
        progress.say("lambda", f"glue-completion: {outcome}")

    return on_state_change


def _read_scores(output_files: list[Path], shingle_size: int) -> list[ScoredWindow]:
    scored = []
    for output_file in output_files:
        with output_file.open(encoding="utf-8") as lines:
            for row in csv.reader(lines):
                if row:
                    window_start = datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                    scored.append(ScoredWindow(window_start, int(float(row[1])), float(row[2]), True))
    scored.sort(key=lambda window: window.window_start)
    # The first N-1 windows were scored on vectors padded with the first count, not on a real history.
    return [
        ScoredWindow(w.window_start, w.passengers, w.score, full_history=index >= shingle_size - 1)
        for index, w in enumerate(scored)
    ]


def _write_scores(scored: list[ScoredWindow], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["window_start", "passengers", "score"])
        for window in scored:
            writer.writerow([f"{window.window_start:%Y-%m-%d %H:%M:%S}", window.passengers, f"{window.score:.6f}"])
