"""Detector scale: one interval at 10, 1,000 and 10,000 series, against the Lambda's memory and timeout.

What one scheduled run does with its state, per series count: parse the state document (the S3 GET's body),
score every series with ``DetectorState``/``score_interval``, serialise the state back. Series keys are
opaque strings (``revenue|platform=p3|marketplace=m0042``), so this measures the same whatever builds the
keys. Every series has a worst-case model state: two weeks of 5-minute values with daily and weekly cycles,
so the daily profile (288 bins) and the weekly correction (168 bins) are both in use.

Each case runs in a fresh Python process (``python -m bench.scale --measure ...``), which reports its CPU time,
wall time and peak RSS (``VmHWM``, the process's own high-water mark: the interpreter, the imports and the
state at its largest, which is what Lambda's "Max Memory Used" counts). S3 requests per interval are
counted once on moto through ``detect_interval`` with the prod layout (10 micro-batch CSVs); they do not
depend on the series count (the state is one object, a single PUT up to 5 GB).

Targets, with the Lambda's memory and timeout from config (``streaming.detector_memory_mb``,
``detector_timeout_seconds``): the 10,000-series interval's estimated Lambda duration within the timeout, and
its peak memory within the memory size. The estimate scales the measured CPU time to the Lambda's CPU share:
the Lambda guide ("Configure Lambda function memory"): "Lambda allocates CPU power in proportion to the amount
of memory configured [...] At 1,769 MB, a function has the equivalent of one vCPU"; one bench core counted as
one vCPU. The state's transfer (GET + PUT) is added at an assumed 50 MB/s, which is only verified on AWS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.reporting import BenchReport, Target
from bench.runtime import Say

SECTION = "Detector scale (one interval, 10 / 1,000 / 10,000 series)"
FREQUENCY_MINUTES = 5  # the target is a 5-minute interval's budget
HISTORY_LENGTH = 288
LEARNT_INTERVALS = 14 * 288  # two weeks: daily profile and weekly correction both in use
INTERVAL_START = datetime(2026, 11, 25, 19, 15, tzinfo=UTC)
ONE_VCPU_MB = 1769  # Lambda: the memory size that has one vCPU
ASSUMED_S3_MB_PER_SECOND = 50.0
BATCHES = 10
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def series_keys(count: int) -> list[str]:
    return [f"revenue|platform=p{index % 10}|marketplace=m{index:05d}" for index in range(count)]


def _template_model() -> tuple[Any, float]:
    """One series' model after two weeks of a daily and weekly cycle, and that series' next value."""
    from anomaly_detector.scoring import DetectorState, score_interval

    state = DetectorState(frequency_minutes=FREQUENCY_MINUTES)
    step = timedelta(minutes=FREQUENCY_MINUTES)
    first = INTERVAL_START - LEARNT_INTERVALS * step
    value = 0.0
    for index in range(LEARNT_INTERVALS + 1):
        day = math.sin(2 * math.pi * index / 288)
        week = 0.2 if (index // 288) % 7 >= 5 else 0.0
        value = 1000 * (1 + 0.4 * day - week) * (1 + 0.03 * math.sin(index * 12.9898))
        if index < LEARNT_INTERVALS:
            score_interval(state, first + index * step, {"template": value}, 48.0, HISTORY_LENGTH)
    return state.series["template"], value


def write_case(folder: Path, count: int) -> tuple[Path, Path]:
    """The state document (every series a copy of the template model) and the interval's totals, as files."""
    from anomaly_detector.scoring import DetectorState

    model, value = _template_model()
    state = DetectorState(
        frequency_minutes=FREQUENCY_MINUTES, last_interval_start=INTERVAL_START - timedelta(minutes=5)
    )
    keys = series_keys(count)
    for key in keys:
        state.series[key] = model.copy()
    state_path, totals_path = folder / f"state-{count}.json", folder / f"totals-{count}.json"
    state_path.write_text(state.to_json())
    totals_path.write_text(json.dumps({key: value * (1 + 0.01 * (index % 7)) for index, key in enumerate(keys)}))
    return state_path, totals_path


def measure_interval(state_path: Path, totals_path: Path) -> dict[str, float]:
    """In this (fresh) process: parse, score, serialise once; CPU, wall and peak RSS."""
    import boto3  # noqa: F401 - the Lambda's own imports count in its memory
    from anomaly_detector.scoring import DetectorState, score_interval

    body = state_path.read_bytes()  # what the S3 GET returns
    totals = json.loads(totals_path.read_text())
    cpu, wall = time.process_time(), time.perf_counter()
    state = DetectorState.from_json(body.decode("utf-8"), FREQUENCY_MINUTES)
    scores = score_interval(state, INTERVAL_START, totals, 47.6, HISTORY_LENGTH)
    written = state.to_json().encode("utf-8")  # what the S3 PUT sends
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    scored = sum(1 for score in scores if score.status == "scored")
    peak_kib = _own_peak_rss_kib()
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "state_bytes": len(written),
        "peak_rss_mib": peak_kib / 1024,
        "scored": scored,
    }


def _own_peak_rss_kib() -> float:
    """This process's own peak RSS in KiB.

    Linux carries ``ru_maxrss`` over from the parent across fork and exec (the parent's size at the fork
    counts), so a child of a large bench process would report the parent's size. ``VmHWM`` in
    /proc/self/status is the high-water mark of this process's own address space, which exec starts anew.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])  # "VmHWM:   123456 kB"
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux, bytes on macOS


def _run_child(state_path: Path, totals_path: Path) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT / "lambda"), str(REPOSITORY_ROOT)])}
    environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--measure", str(state_path), str(totals_path)],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def count_s3_requests_per_interval() -> Counter[str]:
    """One live interval through detect_interval on moto: prod layout (10 batch CSVs), state present."""
    import boto3
    from anomaly_detector.config import DetectorSettings
    from anomaly_detector.history import S3IntervalSource
    from anomaly_detector.logic import detect_interval
    from anomaly_detector.scoring import DetectorState
    from anomaly_detector.stores import S3IntervalStore, partition_path
    from moto import mock_aws

    settings = DetectorSettings(frequency_minutes=FREQUENCY_MINUTES, history_length=HISTORY_LENGTH)
    bucket, state_key = "bench-scale-bucket", "metrics/detector-state/history.json"

    class Discard:
        def publish(self, subject: str, message: str) -> None:
            del subject, message

        def put_metrics(self, values: Any, timestamp: datetime, *, by_measure: Any = None) -> None:
            del values, timestamp, by_measure

    fake_credentials = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    with patch.dict(os.environ, fake_credentials), mock_aws():
        os.environ.pop("AWS_PROFILE", None)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        folder = partition_path("metrics/intervals/", INTERVAL_START)
        for batch in range(BATCHES):
            # Every column of the reference schema, so any metric set of it can be aggregated.
            body = "platform,marketplace,event_time,views,revenue\n" + "".join(
                f"web,m{i},{INTERVAL_START:%Y-%m-%d %H:%M:%S},{10 + i},{2.5 * i}\n" for i in range(10)
            )
            s3.put_object(Bucket=bucket, Key=f"{folder}batch_id={batch:012d}/part-00000.csv", Body=body.encode())
        state = DetectorState(
            frequency_minutes=FREQUENCY_MINUTES,
            last_interval_start=INTERVAL_START - timedelta(minutes=5),
            metric_set=settings.metric_set.signature,
        )
        s3.put_object(Bucket=bucket, Key=state_key, Body=state.to_json().encode())
        calls: Counter[str] = Counter()
        lock = threading.Lock()

        def count(model: Any, **_: Any) -> None:
            with lock:
                calls[model.name] += 1

        s3.meta.events.register("before-call.s3", count)
        detect_interval(
            store=S3IntervalStore(s3, bucket, "metrics/intervals/", "metrics/anomalies/", state_key),
            publisher=Discard(),
            metrics=Discard(),
            interval_start=INTERVAL_START,
            settings=settings,
            history=S3IntervalSource(s3, bucket, "metrics/intervals/", "metrics/detector-aggregates/"),
        )
    return calls


def _lambda_size() -> tuple[int, int]:
    from app_config import load_environment

    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text())["context"]
    streaming = load_environment(context["environments"], "prod", default_account="123456789012").streaming
    return streaming.detector_memory_mb, streaming.detector_timeout_seconds


def run(report: BenchReport, say: Say, series_counts: Sequence[int], runs_for: dict[int, int]) -> None:
    memory_mb, timeout_seconds = _lambda_size()
    cpu_share = min(1.0, memory_mb / ONE_VCPU_MB)
    requests = count_s3_requests_per_interval()
    request_total = sum(requests.values())
    say(f"  S3 requests per live interval: {request_total} ({dict(requests)})")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as temporary:
        for count in series_counts:
            state_path, totals_path = write_case(Path(temporary), count)
            results = [_run_child(state_path, totals_path) for _ in range(runs_for[count])]
            state_path.unlink()
            for result in results:
                say(
                    f"  {count:,} series: cpu {result['cpu_s']:.2f} s, wall {result['wall_s']:.2f} s, state "
                    f"{result['state_bytes'] / 2**20:.1f} MiB, peak RSS {result['peak_rss_mib']:.0f} MiB"
                )
            label = f"{count:,} series, each with two weeks learnt"
            cpu = report.add(SECTION, label, "CPU time per interval", "s", [r["cpu_s"] for r in results])
            report.add(SECTION, label, "wall time per interval", "s", [r["wall_s"] for r in results])
            state_mib = results[0]["state_bytes"] / 2**20
            report.add(
                SECTION,
                label,
                "state size",
                "MiB",
                [state_mib],
                note=f"{results[0]['state_bytes'] / count:,.0f} bytes per series",
            )
            peak = report.add(
                SECTION, label, "peak memory (RSS of a fresh process)", "MiB", [r["peak_rss_mib"] for r in results]
            )
            report.add(
                SECTION,
                label,
                "S3 requests per interval",
                "requests",
                [request_total],
                note="state GET + PUT, interval LIST, totals.json GET (absent) + PUT, 10 batch CSV GETs; "
                "independent of the series count",
            )
            transfer = 2 * state_mib * 1.048576 / ASSUMED_S3_MB_PER_SECOND
            estimate = cpu.median / cpu_share + transfer
            report.add(
                SECTION,
                label,
                f"estimated Lambda duration at {memory_mb} MB",
                "s",
                [estimate],
                note=f"CPU / {cpu_share:.2f} vCPU + state GET/PUT at an assumed {ASSUMED_S3_MB_PER_SECOND:.0f} MB/s",
            )
            if count == max(series_counts):
                report.targets.append(
                    Target(
                        f"{count:,} series scored within the detector's timeout ({timeout_seconds} s, "
                        f"{memory_mb} MB, one 5-minute interval)",
                        float(timeout_seconds),
                        estimate,
                        "s",
                        note="estimated from the CPU time at the Lambda's CPU share; see the README's Scale section",
                    )
                )
                report.targets.append(
                    Target(
                        f"{count:,} series: peak memory within the detector's {memory_mb} MB",
                        memory_mb / 1.048576,
                        peak.median,
                        "MiB",
                        note="peak RSS of a fresh Python process parsing, scoring and writing the state",
                    )
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--measure", nargs=2, type=Path, metavar=("STATE", "TOTALS"), required=True)
    args = parser.parse_args(argv)
    print(json.dumps(measure_interval(*args.measure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
