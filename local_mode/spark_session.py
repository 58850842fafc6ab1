"""The one local SparkSession shared by the emulated Glue jobs (batch prep and streaming ETL)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JAVA_INSTALL_HINT = (
    "Java 17 is needed for local Spark. Install it with: sudo apt-get install -y openjdk-17-jre-headless "
    "(Debian/Ubuntu) or brew install openjdk@17 (macOS), or set JAVA_HOME."
)
_lock = threading.Lock()
# Spark's log goes to a file (see the properties file), so the console shows only the local mode's progress.
LOG4J2_CONFIGURATION = Path(__file__).resolve().parent / "spark-log4j2.properties"


class JavaMissingError(RuntimeError):
    """No `java` on PATH and no JAVA_HOME: local Spark cannot start."""


def java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isfile(os.path.join(java_home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def get_spark(log_file: Path | None = None) -> SparkSession:
    """Start (once per process) or return the local SparkSession.

    ``log_file`` is where Spark's own log goes when this call starts the JVM (default: a temporary file).
    """
    if not java_available():
        raise JavaMissingError(JAVA_INSTALL_HINT)
    from pyspark.sql import SparkSession

    # The JVM picks its address before any Spark setting applies: keep it on loopback.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_path = log_file or Path(tempfile.gettempdir()) / f"taxi-local-spark-{os.getpid()}.log"
    java_options = " ".join(
        [
            # A short-lived JVM on small inputs: quick C1-only JIT and no generated code to compile pay off.
            "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIGURATION.as_uri()}",
            # Quoted: Spark splits these options like a shell would, and the path may hold spaces.
            f'"-Dtaxi.local.spark.log={log_path}"',
        ]
    )
    with _lock:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("taxi-anomaly-local")
            .config("spark.ui.enabled", "false")
            # Local Spark listens on loopback only (driver RPC and block manager).
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.extraJavaOptions", java_options)
            .config("spark.sql.codegen.wholeStage", "false")
            .config("spark.sql.catalogImplementation", "in-memory")
            # Like S3: no .crc checksum files next to each output, and no rename per task on commit.
            .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
            .config("spark.hadoop.fs.file.impl.disable.cache", "true")
            .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        return session
