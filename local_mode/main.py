"""`python -m local_mode`: parse options, run both systems, draw the charts, print the summary."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app_config.settings import EnvironmentConfig, StreamingConfig, load_environment
from local_mode.local_compute import REPOSITORY_ROOT
from local_mode.ml_system import PipelineOptions, PipelineOutcome, build_definition, run_pipeline
from local_mode.progress import Progress
from local_mode.spark_session import JavaMissingError, get_spark
from local_mode.streaming_sim import DEFAULT_ANOMALY_HOUR, StreamOptions, StreamOutcome, run_streaming

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2
# Folders of `--out` this program owns and recreates on every run.
OUTPUT_FOLDERS = ("s3", "pipeline", "streaming", "charts", "logs", "approval")
System = Literal["pipeline", "streaming"]


@dataclass(frozen=True)
class LocalModeArgs:
    out: Path = Path("out")
    input_path: Path | None = None
    trips: int = 300_000
    seed: int = 7
    env: str = "dev"
    completion: Literal["poll", "events"] | None = None
    poll_seconds: float | None = None
    fail_prep: bool = False
    kill_task_after: float | None = None
    stream_hours: int = 48
    stream_batch_hours: int = 3
    stream_anomaly_hour: float = DEFAULT_ANOMALY_HOUR
    only: System | None = None
    charts: bool = True
    quiet: bool = False
    approval: Literal["auto", "prompt", "reject"] = "auto"


@dataclass
class RunResult:
    exit_code: int
    out: Path
    pipeline: PipelineOutcome | None = None
    streaming: StreamOutcome | None = None
    charts: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    error: str = ""
    progress_lines: list[str] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None = None) -> LocalModeArgs:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode",
        description="Run the taxi anomaly pipeline and the streaming metrics system locally (no AWS account).",
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    parser.add_argument(
        "--input",
        dest="input_path",
        type=Path,
        help="TLC yellow trip file or folder (CSV or Parquet); default: a generated month",
    )
    parser.add_argument(
        "--trips", type=int, default=300_000, help="trips to generate when --input is not given (default 300000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed for generated data (default 7)")
    parser.add_argument("--env", default="dev", help="cdk.json environment whose settings to use (default dev)")
    parser.add_argument(
        "--completion",
        choices=("poll", "events"),
        help="how the prep step completes (default: the environment's data_prep.completion)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help="Fargate task's Glue poll interval (default: the environment's, 5 s then 15 s)",
    )
    parser.add_argument("--fail-prep", action="store_true", help="leave the input location empty so the Glue job fails")
    parser.add_argument(
        "--kill-task-after",
        type=float,
        metavar="SECONDS",
        help="kill the Fargate task's process (SIGKILL, like an out-of-memory kill) after this long: "
        "the task watchdog then fails the callback step",
    )
    parser.add_argument("--stream-hours", type=int, default=48, help="simulated hours of streaming (default 48)")
    parser.add_argument(
        "--stream-batch-hours", type=int, default=3, help="simulated hours per streaming micro-batch (default 3)"
    )
    parser.add_argument(
        "--stream-anomaly-hour",
        type=float,
        default=DEFAULT_ANOMALY_HOUR,
        help=f"simulated hour at which the 30-minute spike starts (default {DEFAULT_ANOMALY_HOUR:g}: day 2, 14:00)",
    )
    parser.add_argument("--only", choices=("pipeline", "streaming"), help="run only one of the two systems")
    parser.add_argument("--no-charts", dest="charts", action="store_false", help="skip the PNG charts")
    parser.add_argument(
        "--approval",
        choices=("auto", "prompt", "reject"),
        default="auto",
        help="who answers the ApproveResults step: auto (default: GET the mailed link, POST Approve over HTTP), "
        "prompt (print the links and wait for you to click one in a browser), reject (POST Reject)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    namespace = parser.parse_args(argv)
    if namespace.trips < 1000:
        parser.error("--trips must be at least 1000")
    if namespace.stream_hours < 1 or namespace.stream_batch_hours < 1:
        parser.error("--stream-hours and --stream-batch-hours must be at least 1")
    if namespace.poll_seconds is not None and not 0.1 <= namespace.poll_seconds <= 300:
        parser.error("--poll-seconds must be between 0.1 and 300")
    return LocalModeArgs(**vars(namespace))


def load_config(name: str) -> EnvironmentConfig:
    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return load_environment(context["environments"], name)


def run(args: LocalModeArgs, *, progress: Progress | None = None) -> RunResult:
    """Run the selected systems end to end; never raises for a failed pipeline (see exit_code)."""
    from local_mode import charts, report

    progress = progress or Progress(quiet=args.quiet)
    result = RunResult(exit_code=EXIT_OK, out=args.out)
    began = time.monotonic()
    config = load_config(args.env)
    _reset_outputs(args.out)
    run_pipeline_system = args.only in (None, "pipeline")
    run_streaming_system = args.only in (None, "streaming")

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="local-mode") as pool:
        definition: Future[dict[str, Any]] | None = None
        if run_pipeline_system:
            # The SDK takes seconds to import: build the definition while Spark starts.
            definition = pool.submit(build_definition, config.region, config.pipeline)
            progress.say("pipeline", "building the pipeline definition (ml_pipeline.definition) in the background")
        started = time.monotonic()
        try:
            get_spark()
        except JavaMissingError as error:
            result.exit_code, result.error = EXIT_SETUP, str(error)
            progress.plain(f"ERROR: {error}")
            return result
        result.timings["Spark start"] = time.monotonic() - started
        progress.say("spark", f"local SparkSession ready (local[2]) in {result.timings['Spark start']:.1f}s")

        streaming: Future[tuple[StreamOutcome, float]] | None = None
        if run_streaming_system:
            # The pipeline mostly waits (Fargate polls, Glue): the streaming system runs alongside it.
            stream_options = StreamOptions(
                out=args.out,
                hours=args.stream_hours,
                seed=args.seed,
                hours_per_batch=args.stream_batch_hours,
                anomaly_hour=args.stream_anomaly_hour,
            )
            streaming = pool.submit(_run_streaming_timed, stream_options, config.streaming, progress)
        if definition is not None:
            pipeline_options = PipelineOptions(
                out=args.out,
                input_path=args.input_path,
                trips=args.trips,
                seed=args.seed,
                completion=args.completion or config.data_prep.completion,
                poll_seconds=args.poll_seconds,
                fail_prep=args.fail_prep,
                kill_task_after=args.kill_task_after,
                approval=args.approval,
            )
            started = time.monotonic()
            result.pipeline = run_pipeline(
                pipeline_options,
                region=config.region,
                pipeline_config=config.pipeline,
                data_prep=config.data_prep,
                definition_future=definition,
                progress=progress,
                approval_config=config.approval,
            )
            result.timings["ML pipeline"] = time.monotonic() - started
            if not result.pipeline.succeeded:
                result.exit_code = EXIT_FAILED
        if streaming is not None:
            result.streaming, result.timings["streaming system"] = streaming.result()
            progress.say("stream", f"done in {result.timings['streaming system']:.1f}s")

    if args.charts:
        started = time.monotonic()
        result.charts = charts.draw_all(result.pipeline, result.streaming, args.out / "charts")
        result.timings["charts"] = time.monotonic() - started
    result.timings["total"] = time.monotonic() - began
    result.summary = report.summary(result.pipeline, result.streaming, result.charts, result.timings, args.out)
    (args.out / "summary.txt").write_text(result.summary + "\n", encoding="utf-8")
    progress.plain(result.summary)
    result.progress_lines = list(progress.lines)
    return result


def _run_streaming_timed(
    options: StreamOptions, config: StreamingConfig, progress: Progress
) -> tuple[StreamOutcome, float]:
    started = time.monotonic()
    return run_streaming(options, config, progress), time.monotonic() - started


def _reset_outputs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv)).exit_code
