"""End to end with input shaped like a real TLC month: Parquet, nanosecond timestamps, and stray dates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from pathlib import Path

import matplotlib.dates as mdates
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from local_mode.charts import pipeline_figure
from local_mode.main import EXIT_FAILED, EXIT_OK, LocalModeArgs, run
from local_mode.progress import Progress
from local_mode.taxi_data import generate_trips

pytestmark = pytest.mark.e2e

# Real monthly files hold a few of these: pickups years away, and a minute either side of the month.
STRAY_PICKUPS = (
    dt.datetime(2002, 12, 31, 23, 58),
    dt.datetime(2009, 1, 1, 0, 12),
    dt.datetime(2025, 2, 28, 23, 59),
    dt.datetime(2025, 4, 1, 0, 3),
)


def tlc_month_as_parquet(folder: Path, trips: int) -> Path:
    """A generated March 2025 in TLC's Parquet layout, with the stray pickups appended."""
    generated = generate_trips(folder / "generated", seed=5, total_trips=trips)
    table = pa_csv.read_csv(generated.path)
    columns = {}
    for name in table.column_names:
        column = table[name]
        if name.endswith("_datetime"):
            column = column.cast(pa.timestamp("ns"))  # what pandas writes
        columns[name] = column
    table = pa.table(columns)
    strays = {name: pa.array([table[name][0].as_py()] * len(STRAY_PICKUPS), table[name].type) for name in columns}
    strays["tpep_pickup_datetime"] = pa.array(STRAY_PICKUPS, pa.timestamp("ns"))
    path = folder / "tlc" / "yellow_tripdata_2025-03.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.concat_tables([table, pa.table(strays)]), path, version="2.6")
    return path


def test_a_month_with_stray_dates_gives_that_months_windows_and_a_readable_chart(tmp_path: Path) -> None:
    # Given a month of TLC-shaped Parquet whose file also holds pickups from 2002, 2009 and the months around it
    source = tlc_month_as_parquet(tmp_path, trips=20_000)
    stream = io.StringIO()

    # When the local mode runs the pipeline on it, quietly
    result = run(
        LocalModeArgs(out=tmp_path / "out", input_path=source.parent, only="pipeline", poll_seconds=0.5, quiet=True),
        progress=Progress(stream, quiet=True),
    )

    # Then every window of March 2025 is scored, and only those
    assert result.exit_code == EXIT_OK, result.summary
    assert result.pipeline is not None and result.pipeline.prep is not None
    assert result.pipeline.prep.rows_out_of_range == len(STRAY_PICKUPS)
    with (tmp_path / "out" / "pipeline" / "scored_windows.csv").open(encoding="utf-8") as lines:
        starts = [row["window_start"] for row in csv.DictReader(lines)]
    assert len(starts) == 31 * 48
    assert (starts[0], starts[-1]) == ("2025-03-01 00:00:00", "2025-03-31 23:30:00")
    # And the chart spans that month, not two decades
    figure = pipeline_figure(result.pipeline)
    left, right = (mdates.num2date(value) for value in figure.axes[-1].get_xlim())
    assert right - left < dt.timedelta(days=35)
    assert figure.axes[-1].get_xlabel() == "window start (UTC)"
    # And --quiet printed the summary, which says what was dropped and why
    printed = stream.getvalue()
    assert printed.startswith("\n" + "=" * 78 + "\nLOCAL MODE SUMMARY")
    assert "analysis range 2025-03-01..2025-04-01 (from the file names: yellow_tripdata_2025-03.parquet): " in printed
    assert "4 pickups outside it dropped" in printed
    assert "[glue]" not in printed


def test_a_failed_pipeline_stops_the_streaming_simulation(tmp_path: Path) -> None:
    # Given a run of both systems whose prep step fails at once
    started = time.monotonic()
    result = run(LocalModeArgs(out=tmp_path, fail_prep=True, poll_seconds=0.5, charts=False, quiet=True))

    # Then the streaming simulation stopped early instead of running its 48 simulated hours
    assert result.exit_code == EXIT_FAILED
    assert result.streaming is not None and result.streaming.stopped_early
    assert result.streaming.batches < 16
    assert "Streaming: stopped after" in result.summary
    assert time.monotonic() - started < 120
