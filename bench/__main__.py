"""`python -m bench` (what `make bench` runs): every benchmark, then bench/results.md and bench/results.json.

python -m bench                      # everything, default runs (about 10 minutes on 2 cores)
python -m bench --quick              # smaller inputs, one run each: checks the bench itself works
python -m bench --only prep,stream   # some sections (prep, stream, sizing, detector, scale, quality, callback,
                                     # devloop)
python -m bench --runs 5             # more runs per figure (the largest CSV case gets one fewer)
python -m bench --include-suite      # also time the whole test suite (minutes) in the developer loop
python -m bench --benchmark-data DIR # the labelled series for the detection-quality section (default
                                     # ../shared/anomaly-benchmark; skipped with a message when absent)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from app_config import StreamingConfig

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# `lambda/` cannot be a package name: the functions' packages are imported from there, as the tests do.
_LAMBDA_FOLDER = str(REPOSITORY_ROOT / "lambda")
if _LAMBDA_FOLDER not in sys.path:
    sys.path.insert(0, _LAMBDA_FOLDER)

from bench import (  # noqa: E402 - needs the path above
    callback,
    detection_quality,
    detector,
    devloop,
    prep,
    scale,
    stream,
    stream_sizing,
)
from bench.reporting import RESULTS_JSON, RESULTS_MARKDOWN, BenchReport, write_results  # noqa: E402
from bench.runtime import Progress, start_spark  # noqa: E402

SECTIONS = ("prep", "stream", "sizing", "detector", "scale", "quality", "callback", "devloop")
SPARK_SECTIONS = {"prep", "stream", "sizing", "callback"}


@dataclass(frozen=True)
class BenchPlan:
    sections: tuple[str, ...]
    prep_sizes: tuple[int, ...]
    prep_runs: dict[tuple[int, str], int]
    stream_sizes: tuple[int, ...]
    stream_runs: dict[int, int]
    detector_dimensions: tuple[int, ...]
    detector_runs: dict[int, int]
    scale_series: tuple[int, ...]
    scale_runs: dict[int, int]
    callback_runs: dict[str, int]
    include_suite: bool
    include_local_run: bool
    quick: bool
    benchmark_data: Path | None
    warm_up_trips: int
    warm_up_records: int


def make_plan(args: argparse.Namespace) -> BenchPlan:
    sections = tuple(SECTIONS if not args.only else [name.strip() for name in args.only.split(",") if name.strip()])
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    prep_sizes: tuple[int, ...]
    stream_sizes: tuple[int, ...]
    dimensions: tuple[int, ...]
    scale_series: tuple[int, ...]
    if args.quick:
        runs = args.runs or 1
        prep_sizes, stream_sizes, dimensions = (200_000, 1_000_000), (10_000, 100_000), (10, 100)
        prep_runs = {(rows, fmt): runs for rows in prep_sizes for fmt in prep.FORMATS}
        stream_runs = dict.fromkeys(stream_sizes, runs)
        detector_runs = dict.fromkeys(dimensions, runs)
        scale_series, scale_runs = (10, 1_000), {10: runs, 1_000: runs}
        callback_runs = {"events": runs, "poll": runs}
    else:
        runs = args.runs or 3
        prep_sizes, stream_sizes, dimensions = (2_000_000, 10_000_000), (10_000, 100_000, 1_000_000), (10, 100, 1_000)
        prep_runs = {(rows, fmt): runs for rows in prep_sizes for fmt in prep.FORMATS}
        # The 10M-row CSV case is the slowest by far: one run fewer keeps the whole bench under 10 minutes.
        prep_runs[(10_000_000, "csv")] = max(1, runs - 1)
        stream_runs = dict.fromkeys(stream_sizes, runs)
        stream_runs[1_000_000] = max(1, runs - 1)
        detector_runs = {10: runs + 2, 100: runs, 1_000: runs}
        # 10,000 series: one fresh process of a few tens of seconds per run
        scale_series, scale_runs = (10, 1_000, 10_000), {10: runs, 1_000: runs, 10_000: max(1, runs - 1)}
        callback_runs = {"events": runs, "poll": runs}
    return BenchPlan(
        sections=sections,
        prep_sizes=prep_sizes,
        prep_runs=prep_runs,
        stream_sizes=stream_sizes,
        stream_runs=stream_runs,
        detector_dimensions=dimensions,
        detector_runs=detector_runs,
        scale_series=scale_series,
        scale_runs=scale_runs,
        callback_runs=callback_runs,
        include_suite=args.include_suite,
        include_local_run=not args.quick,
        quick=args.quick,
        benchmark_data=args.benchmark_data,
        warm_up_trips=200_000,
        warm_up_records=10_000,
    )


def _java_version() -> str:
    java = shutil.which("java")
    if java is None:
        return "not found"
    try:
        completed = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    first_line = (completed.stderr or completed.stdout).splitlines()
    return first_line[0] if first_line else "unknown"


def _git_revision() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        head = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=REPOSITORY_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--", "glue_scripts"],
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} (glue_scripts {'modified' if dirty else 'as committed'})"


def _environment() -> dict[str, str]:
    import duckdb
    import pyspark

    load = os.getloadavg()
    memory_gib = psutil.virtual_memory().total / 1024**3
    return {
        "machine": f"{os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, {platform.platform()}",
        "load average at start (1/5/15 min)": f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
        "Python": platform.python_version(),
        "PySpark": pyspark.__version__,
        "Java": _java_version(),
        "DuckDB": duckdb.__version__,
        "git": _git_revision(),
    }


def _dev_streaming_config() -> StreamingConfig:
    """The streaming settings `cdk deploy` uses for dev (cdk.json), which the sizing section measures."""
    import json

    from app_config import load_environment

    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"]
    return load_environment(context["environments"], "dev", default_account="123456789012").streaming


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and one run each (checks the bench)")
    parser.add_argument("--only", help=f"comma-separated sections to run: {', '.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; the largest cases get one fewer)")
    parser.add_argument("--include-suite", action="store_true", help="also time the whole pytest suite (minutes)")
    parser.add_argument(
        "--benchmark-data",
        type=Path,
        help="the shared labelled series (labels.json, data/, published/); default ../shared/anomaly-benchmark",
    )
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    progress = Progress()
    say = progress.say
    report = BenchReport(started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), environment=_environment())
    say(f"bench sections: {', '.join(plan.sections)}{' (quick)' if args.quick else ''}")

    spark = None
    if SPARK_SECTIONS & set(plan.sections):
        say("starting the local SparkSession (local[2], configured by taxi_prep.configure_spark)")
        spark, startup_seconds = start_spark()
        report.add(
            "Spark",
            "local[2] SparkSession",
            "fixed start-up cost",
            "s",
            [startup_seconds],
            note="JVM launch to the first job done; paid once per process, excluded from every other figure",
        )
        say(f"Spark ready in {startup_seconds:.1f} s; warm-up runs (not measured)")
        started = time.perf_counter()
        if "prep" in plan.sections:
            prep.warm_up(spark, say, plan.warm_up_trips)
        if {"stream", "sizing"} & set(plan.sections):
            stream.warm_up(spark, say, plan.warm_up_records)
        say(f"warm-up done in {time.perf_counter() - started:.1f} s")

    if "prep" in plan.sections and spark is not None:
        say("== prep transform")
        prep.run(spark, report, say, plan.prep_sizes, plan.prep_runs)
    if "stream" in plan.sections and spark is not None:
        say("== streaming batch")
        stream.run(spark, report, say, plan.stream_sizes, plan.stream_runs)
    if "sizing" in plan.sections and spark is not None:
        say("== streaming job sizing (dev config)")
        stream_sizing.run(spark, report, say, _dev_streaming_config(), runs=1 if args.quick else (args.runs or 3))
    if "detector" in plan.sections:
        say("== detector")
        detector.run(report, say, plan.detector_dimensions, plan.detector_runs)
    if "scale" in plan.sections:
        say("== detector scale (10 / 1,000 / 10,000 series)")
        scale.run(report, say, plan.scale_series, plan.scale_runs)
    if "quality" in plan.sections:
        say("== detection quality (NAB)")
        detection_quality.run(report, say, quick=plan.quick, benchmark=plan.benchmark_data)
    if "callback" in plan.sections:
        say("== callback overhead (local mode)")
        callback.run(report, say, plan.callback_runs)
    if "devloop" in plan.sections:
        say("== developer loop")
        devloop.run(report, say, include_suite=plan.include_suite, include_local_run=plan.include_local_run)

    if spark is not None:
        spark.stop()
    report.wall_seconds = progress.elapsed()
    report.environment["load average at end (1/5/15 min)"] = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    write_results(report)
    say(f"done in {report.wall_seconds:.0f} s: wrote {RESULTS_MARKDOWN} and {RESULTS_JSON}")
    for target in report.targets:
        say(f"  {'met   ' if target.met else 'MISSED'} {target.name}: {target.verdict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
