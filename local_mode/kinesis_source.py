"""Glue's Kinesis source, locally: record bytes -> the frame Glue hands ``forEachBatch``.

In AWS the streaming job reads the stream with ``create_data_frame.from_options(connection_type="kinesis")``,
``classification=json``, ``inferSchema=false`` and the DDL ``schema`` of ``streaming_etl.source_schema`` (see
``streaming_etl.kinesis_connection_options``). Glue's connector is not available outside
AWS, so this module does the part of it that decides what the job sees: each Kinesis record's data blob, as a
binary column (Kinesis hands out bytes), parsed with Spark's own JSON parser, with the same schema, in PERMISSIVE
mode. That is Spark's documented behaviour for the same schema and options; that Glue parses with exactly this
parser is verified only on AWS (see the README's streaming section).

A Kinesis record's data is a byte blob, so a record given as anything but bytes is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from glue_scripts.streaming_etl import CORRUPT_RECORD_COLUMN, StreamSettings, source_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DATA_COLUMN = "data"


class RecordRejectedError(ValueError):
    """A record that is not a byte blob, which no Kinesis stream can hold."""


def parse_like_glue(data: DataFrame, settings: StreamSettings) -> DataFrame:
    """A frame with a binary ``data`` column (one Kinesis record per row) -> the columns of Glue's json source."""
    from pyspark.sql import functions as sf

    parsed = sf.from_json(
        sf.col(DATA_COLUMN).cast("string"),
        source_schema(settings),
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD_COLUMN},
    )
    return data.select(parsed.alias("record")).select("record.*")


def records_batch(spark: SparkSession, records: Sequence[bytes], settings: StreamSettings) -> DataFrame:
    """One micro-batch of Kinesis records, as Glue's Kinesis source delivers it to ``forEachBatch``."""
    for position, record in enumerate(records):
        if not isinstance(record, bytes | bytearray):
            raise RecordRejectedError(f"record {position} is {type(record).__name__}; Kinesis records are bytes")
    data = spark.createDataFrame([(bytearray(record),) for record in records], f"{DATA_COLUMN} binary")
    return parse_like_glue(data, settings)


def json_lines_batch(spark: SparkSession, path: Path, settings: StreamSettings, partitions: int = 2) -> DataFrame:
    """A large batch from a file with one record per line (records without newlines, as a generator writes)."""
    from pyspark.sql import functions as sf

    lines = spark.read.text(str(path)).select(sf.col("value").cast("binary").alias(DATA_COLUMN))
    return parse_like_glue(lines.repartition(partitions), settings)
