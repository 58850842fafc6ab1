"""What every benchmark shares: progress lines, the one SparkSession, timing and peak-memory sampling."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import psutil

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Say = Callable[[str], None]
T = TypeVar("T")
RSS_SAMPLE_SECONDS = 0.1
MIB = 1024 * 1024


class Progress:
    """Prints `[  12.3s] message` lines so a long run shows where it is."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        print(f"[{self.elapsed():7.1f}s] {message}", flush=True)


class SilentLogger:
    """The prep job's logger, quiet: its lines are not what is measured."""

    def info(self, msg: str, /) -> None:
        del msg


@dataclass
class PeakRss:
    """Peak resident memory of this process and all its descendants (the Spark JVM is a child process)."""

    peak_bytes: int = 0

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB


def process_tree_rss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a short-lived child ended between listing and reading
    return total


@contextmanager
def sample_peak_rss(include_children: bool = True) -> Iterator[PeakRss]:
    """Sample RSS every 100 ms (psutil) while the block runs; ``include_children=False`` reads this process only."""
    root = psutil.Process(os.getpid())
    peak = PeakRss()
    finished = threading.Event()

    def read() -> int:
        return process_tree_rss(root) if include_children else root.memory_info().rss

    def sample() -> None:
        while not finished.is_set():
            peak.peak_bytes = max(peak.peak_bytes, read())
            finished.wait(RSS_SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        finished.set()
        sampler.join()
        peak.peak_bytes = max(peak.peak_bytes, read())


def start_spark() -> tuple[SparkSession, float]:
    """The one local SparkSession of the bench, configured the way the Glue job configures its own.

    Returns the session and Spark's fixed start-up cost: JVM launch to the first (trivial) job done.
    """
    from pyspark.sql import SparkSession

    from glue_scripts.taxi_prep import configure_spark

    # The JVM picks its address before any Spark setting applies: keep it on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("taxi-anomaly-bench")
        .config("spark.ui.enabled", "false")
        # Local Spark listens on loopback only (driver RPC and block manager).
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.showConsoleProgress", "false")
        # A G.1X worker has 16 GB; local mode runs everything in the driver, so give it a few of them.
        .config("spark.driver.memory", "4g")
        .config("spark.sql.catalogImplementation", "in-memory")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    configure_spark(spark)
    spark.range(1).count()
    return spark, time.perf_counter() - started


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Wall time of ``action()`` (perf_counter) and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result
