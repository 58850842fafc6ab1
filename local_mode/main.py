"""`python -m local_mode`: parse options, run both systems, draw the charts, print the summary.

Only the standard library and this repository's light modules are imported at the top, so `--help` works
with any Python 3.11 (no venv); the systems' own imports happen when a run starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app_config.settings import ConfigError, EnvironmentConfig, StreamingConfig, load_environment
from local_mode.output_folder import OutputFolderError, prepare_output_folder
from local_mode.progress import Progress
from local_mode.spark_session import JavaMissingError, get_spark
from local_mode.streaming_sim import StreamOptions, StreamOutcome, run_streaming
from local_mode.trip_input import TripInputError, check_trip_input

if TYPE_CHECKING:
    from local_mode.ml_system import PipelineOutcome

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2
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
    glue_startup_seconds: float = 0.0
    drop_events: bool = False
    stream_hours: int = 48
    stream_batch_hours: int = 3
    stream_anomaly_hour: float | None = None
    only: System | None = None
    charts: bool = True
    quiet: bool = False
    approval: Literal["auto", "prompt", "reject"] = "auto"
    # The prep job's analysis range and window cap (job arguments --analysis_start, ... in AWS).
    analysis_start: str | None = None
    analysis_end: str | None = None
    max_windows: int | None = None

    def prep_arguments(self) -> dict[str, str]:
        """The prep Glue job arguments these options set."""
        values = {"analysis_start": self.analysis_start, "analysis_end": self.analysis_end}
        arguments = {f"--{name}": value for name, value in values.items() if value}
        if self.max_windows is not None:
            arguments["--max_windows"] = str(self.max_windows)
        return arguments


@dataclass
class RunResult:
    exit_code: int
    out: Path
    pipeline: PipelineOutcome | None = None
    streaming: StreamOutcome | None = None
    charts: list[Path] = field(default_factory=list)
    report_page: Path | None = None
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
    parser.add_argument(
        "--glue-startup-seconds",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep each Glue run STARTING this long before its script runs, as Glue does while it provisions "
        "workers (default 0); with --kill-task-after shorter than this, the task is killed while its run starts",
    )
    parser.add_argument(
        "--drop-events",
        action="store_true",
        help="lose the Glue completion events (events mode; implies --completion events): "
        "the reconciler ends the callback step instead",
    )
    parser.add_argument("--stream-hours", type=int, default=48, help="simulated hours of streaming (default 48)")
    parser.add_argument(
        "--stream-batch-hours", type=int, default=3, help="simulated hours per streaming micro-batch (default 3)"
    )
    parser.add_argument(
        "--stream-anomaly-hour",
        type=float,
        default=None,
        help="inject only one 30-minute spike (views x4 in de) at this simulated hour, instead of the schedule "
        "(a revenue drop in web/de at hour 30, a views spike in ios/us at 36, a views drop on android at 42)",
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
    parser.add_argument("--quiet", action="store_true", help="print only the summary (and errors)")
    parser.add_argument(
        "--analysis-start",
        metavar="DATE",
        help="first day analysed, YYYY-MM-DD (UTC); pickups before it are dropped and counted "
        "(default: from the file names, e.g. yellow_tripdata_2024-01.parquet, else the months holding the bulk of "
        "the trips)",
    )
    parser.add_argument(
        "--analysis-end", metavar="DATE", help="end of the analysed period, exclusive, YYYY-MM-DD (UTC); as above"
    )
    parser.add_argument(
        "--max-windows",
        type=int,
        metavar="N",
        help="fail the prep job when the series would have more half-hour windows than this (default 35136)",
    )
    namespace = parser.parse_args(argv)
    if namespace.trips < 1000:
        parser.error("--trips must be at least 1000")
    if namespace.stream_hours < 1 or namespace.stream_batch_hours < 1:
        parser.error("--stream-hours and --stream-batch-hours must be at least 1")
    if namespace.poll_seconds is not None and not 0.1 <= namespace.poll_seconds <= 300:
        parser.error("--poll-seconds must be between 0.1 and 300")
    if not 0 <= namespace.glue_startup_seconds <= 600:
        parser.error("--glue-startup-seconds must be between 0 and 600")
    return LocalModeArgs(**vars(namespace))


def load_config(name: str) -> EnvironmentConfig:
    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return load_environment(context["environments"], name)


class SetupError(Exception):
    """Something to fix before a run can start; printed as one line, exit code 2."""


def check_before_start(args: LocalModeArgs) -> EnvironmentConfig:
    """Everything that can be checked in seconds, before Spark starts or anything is written."""
    try:
        config = load_config(args.env)
    except ConfigError as error:
        raise SetupError(f"--env {args.env}: {error}") from None
    if args.only != "streaming":
        if args.input_path is not None and not args.fail_prep:
            try:
                check_trip_input(args.input_path)
            except TripInputError as error:
                raise SetupError(str(error)) from None
        from glue_scripts.taxi_prep import PrepInputError, input_options_from_arguments

        try:
            input_options_from_arguments(args.prep_arguments())
        except PrepInputError as error:
            message = str(error).replace("--analysis_", "--analysis-").replace("--max_windows", "--max-windows")
            raise SetupError(message) from None
    try:
        prepare_output_folder(args.out)
    except OutputFolderError as error:
        raise SetupError(str(error)) from None
    return config


def run(args: LocalModeArgs, *, progress: Progress | None = None) -> RunResult:
    """Run the selected systems end to end; never raises for a failed pipeline (see exit_code)."""
    from local_mode import charts, report
    from local_mode.ml_system import PipelineOptions, build_definition, run_pipeline
    from local_mode.report_page import build_report_page

    progress = progress or Progress(quiet=args.quiet)
    result = RunResult(exit_code=EXIT_OK, out=args.out)
    began = time.monotonic()
    try:
        config = check_before_start(args)
    except SetupError as error:
        result.exit_code, result.error = EXIT_SETUP, str(error)
        progress.always(f"error: {error}", stream=sys.stderr)
        return result
    run_pipeline_system = args.only in (None, "pipeline")
    run_streaming_system = args.only in (None, "streaming")
    # Set when the pipeline fails: the streaming simulation stops at its next batch instead of running on.
    stop_streaming = threading.Event()

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="local-mode") as pool:
        definition: Future[dict[str, Any]] | None = None
        if run_pipeline_system:
            # The SDK takes seconds to import: build the definition while Spark starts.
            definition = pool.submit(build_definition, config.region, config.pipeline)
            progress.say("pipeline", "building the pipeline definition (ml_pipeline.definition) in the background")
        started = time.monotonic()
        try:
            get_spark(log_file=args.out / "logs" / "spark.log")
        except JavaMissingError as error:
            result.exit_code, result.error = EXIT_SETUP, str(error)
            progress.always(f"error: {error}", stream=sys.stderr)
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
                stop=stop_streaming,
            )
            streaming = pool.submit(_run_streaming_timed, stream_options, config.streaming, progress)
        if definition is not None:
            pipeline_options = PipelineOptions(
                out=args.out,
                input_path=args.input_path,
                trips=args.trips,
                seed=args.seed,
                completion="events" if args.drop_events else args.completion or config.data_prep.completion,
                poll_seconds=args.poll_seconds,
                fail_prep=args.fail_prep,
                kill_task_after=args.kill_task_after,
                approval=args.approval,
                glue_startup_seconds=args.glue_startup_seconds,
                drop_events=args.drop_events,
                prep_arguments=args.prep_arguments(),
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
                if streaming is not None and not streaming.done():
                    stop_streaming.set()
                    progress.say(
                        "stream", "stopping at the next batch: the ML pipeline failed (--only streaming runs it alone)"
                    )
        if streaming is not None:
            result.streaming, result.timings["streaming system"] = streaming.result()
            progress.say("stream", f"done in {result.timings['streaming system']:.1f}s")

    if args.charts:
        started = time.monotonic()
        result.charts = charts.draw_all(result.pipeline, result.streaming, args.out / "charts")
        result.timings["charts"] = time.monotonic() - started
    # out/report.html, from the out folder alone (as `python -m local_mode.report_page --out` rebuilds it).
    started = time.monotonic()
    result.report_page = build_report_page(args.out, config.streaming)
    result.timings["report page"] = time.monotonic() - started
    result.timings["total"] = time.monotonic() - began
    files = [*result.charts, result.report_page]
    result.summary = report.summary(result.pipeline, result.streaming, files, result.timings, args.out)
    (args.out / "summary.txt").write_text(result.summary + "\n", encoding="utf-8")
    progress.always(result.summary)
    result.progress_lines = list(progress.lines)
    return result


def _run_streaming_timed(
    options: StreamOptions, config: StreamingConfig, progress: Progress
) -> tuple[StreamOutcome, float]:
    started = time.monotonic()
    return run_streaming(options, config, progress), time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args).exit_code
    except ModuleNotFoundError as error:
        print(
            f"error: the local mode needs this project's Python packages ({error}); "
            "run it with `make local` (which installs them) or with .venv/bin/python -m local_mode",
            file=sys.stderr,
        )
        return EXIT_SETUP
