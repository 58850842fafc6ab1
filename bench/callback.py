"""Callback overhead: in the local mode, from the Glue run ending to the pipeline's callback step resolving.

Runs the local mode's ML pipeline through its public API (`local_mode.main.run`) with a progress recorder:

- Glue run end = the prep script's last log line ("wrote ... scoring rows"), right before the emulated Glue
  marks the run SUCCEEDED;
- step resolved = the callback step's end time as the pipeline runner records it.

Poll mode uses cdk.json dev's data_prep settings (first poll after 5 s, then backing off to every 15 s), so
its latency depends on where the run's end falls between two polls: anything from ~0 to the interval. The
Fargate task's own log line `callback_latency_seconds` (poll observed the end -> callback sent) is reported
too. Input: a small two-day trip file, so the rest of the pipeline (training, scoring) stays short; the
trips are not what is measured here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.data import DATA_ROOT, ensure_small_trip_file
from bench.reporting import BenchReport, Target
from bench.runtime import Say

if TYPE_CHECKING:
    from local_mode.main import RunResult

SECTION = "Callback overhead (local mode: Glue run end -> callback step resolved)"
EVENTS_TARGET_SECONDS = 5.0
POLL_SLACK_SECONDS = 5.0
GLUE_END_MESSAGE = re.compile(r"^wrote \d+ (train rows|training vectors)")  # the prep job's final line
TASK_LATENCY = re.compile(r"callback_latency_seconds=(?P<seconds>[0-9.]+)")
SMALL_TRIP_ROWS, SMALL_TRIP_DAYS = 20_000, 2


@dataclass
class ModeResult:
    latencies: list[float] = field(default_factory=list)
    task_latencies: list[float] = field(default_factory=list)
    glue_run_seconds: list[float] = field(default_factory=list)
    pipeline_seconds: list[float] = field(default_factory=list)


def _recording_progress() -> tuple[object, list[tuple[float, str, str]]]:
    from local_mode.progress import Progress

    lines: list[tuple[float, str, str]] = []

    class RecordingProgress(Progress):
        """The local mode's progress, quiet, with each line's wall-clock time kept."""

        def say(self, stage: str, message: str) -> None:
            lines.append((time.time(), stage, message))
            super().say(stage, message)

    return RecordingProgress(quiet=True), lines


def _one_run(mode: str, say: Say) -> tuple[float, float | None, float, float]:
    from local_mode.main import LocalModeArgs, run

    trips = ensure_small_trip_file(SMALL_TRIP_ROWS, SMALL_TRIP_DAYS, say)
    progress, lines = _recording_progress()
    args = LocalModeArgs(
        out=DATA_ROOT / "callback_out",
        input_path=trips,
        completion="poll" if mode == "poll" else "events",
        only="pipeline",
        charts=False,
        quiet=True,
    )
    started = time.perf_counter()
    result: RunResult = run(args, progress=progress)  # type: ignore[arg-type]
    pipeline_seconds = time.perf_counter() - started
    if result.pipeline is None or not result.pipeline.succeeded:
        raise RuntimeError(f"local mode pipeline did not succeed ({mode}): {result.error or 'see its progress'}")
    callback_step = next(step for step in result.pipeline.execution.steps if step.step_type == "Callback")
    glue_ends = [at for at, stage, message in lines if stage == "glue" and GLUE_END_MESSAGE.match(message)]
    if not glue_ends:
        raise RuntimeError("the prep script's final log line was not seen; cannot tell when the Glue run ended")
    task_latency = next(
        (float(match["seconds"]) for _, _, message in lines if (match := TASK_LATENCY.search(message))), None
    )
    glue_starts = [at for at, stage, message in lines if stage == "glue" and "RUNNING" in message]
    glue_seconds = glue_ends[-1] - glue_starts[-1] if glue_starts else float("nan")
    return callback_step.ended - glue_ends[-1], task_latency, pipeline_seconds, glue_seconds


def run(report: BenchReport, say: Say, runs_for: dict[str, int]) -> None:
    try:
        from local_mode.main import LocalModeArgs  # noqa: F401 - only checks the local mode is there
    except ImportError as error:
        report.skipped.append(("Callback overhead", f"local_mode is not importable: {error}"))
        return
    from local_mode.main import load_config

    data_prep = load_config("dev").data_prep
    interval, first_poll = float(data_prep.poll_interval_seconds), float(data_prep.first_poll_seconds)
    results: dict[str, ModeResult] = {}
    for mode in ("events", "poll"):
        outcome = results.setdefault(mode, ModeResult())
        for run_number in range(1, runs_for[mode] + 1):
            latency, task_latency, pipeline_seconds, glue_seconds = _one_run(mode, say)
            outcome.latencies.append(latency)
            outcome.glue_run_seconds.append(glue_seconds)
            outcome.pipeline_seconds.append(pipeline_seconds)
            if task_latency is not None:
                outcome.task_latencies.append(task_latency)
            say(
                f"  callback {mode} run {run_number}/{runs_for[mode]}: Glue end -> step resolved {latency:.2f} s "
                f"(whole local pipeline {pipeline_seconds:.1f} s)"
            )
    events, poll = results["events"], results["poll"]
    report.add(
        SECTION,
        "events (Glue state change -> completion logic)",
        "Glue end -> step resolved",
        "s",
        events.latencies,
        note="in-process event; in AWS, EventBridge delivery and a Lambda cold start come on top (about 1 s)",
    )
    poll_case = f"poll (first poll {first_poll:g} s, then every {interval:g} s)"
    report.add(
        SECTION,
        poll_case,
        "Glue end -> step resolved",
        "s",
        poll.latencies,
        note=(
            f"includes the wait for the next poll, 0 to {interval:g} s depending on when the run ends; this small "
            f"job ends before the first poll at {first_poll:g} s, so here it is about {first_poll:g} s minus the "
            "Glue run time"
        ),
    )
    report.add(SECTION, poll_case, "Glue run time (context)", "s", poll.glue_run_seconds)
    if poll.task_latencies:
        report.add(
            SECTION,
            poll_case,
            "task: poll saw the end -> callback sent",
            "s",
            poll.task_latencies,
            note="the Fargate task's callback_latency_seconds log line",
        )
    for mode, outcome in results.items():
        report.add(SECTION, f"{mode}: whole local ML pipeline", "wall time", "s", outcome.pipeline_seconds)
    report.targets.append(
        Target(
            "Callback, events mode: Glue end -> step resolved",
            EVENTS_TARGET_SECONDS,
            max(events.latencies),
            "s",
            note="slowest run",
        )
    )
    report.targets.append(
        Target(
            f"Callback, poll mode: Glue end -> step resolved (interval {interval:g} s + {POLL_SLACK_SECONDS:g} s)",
            interval + POLL_SLACK_SECONDS,
            max(poll.latencies),
            "s",
            note="slowest run; by design the worst case is one interval plus the callback itself",
        )
    )
