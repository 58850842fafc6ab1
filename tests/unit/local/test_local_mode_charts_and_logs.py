"""The local mode's charts say what their axes are (and in which time zone); Spark logs to a file, not the console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from local_mode.charts import streaming_figure
from local_mode.spark_session import LOG4J2_CONFIGURATION
from local_mode.streaming_sim import StreamOutcome


def test_the_streaming_chart_labels_its_axes_with_the_interval_and_utc() -> None:
    # Given two marketplaces' views over a few 10-minute intervals
    start = datetime(2026, 11, 23, tzinfo=UTC)
    sums = {
        market: {start + timedelta(minutes=10 * index): float(100 + index) for index in range(6)}
        for market in ("us", "de")
    }
    outcome = StreamOutcome(start, start + timedelta(hours=1), "de", None, interval_sums=sums, frequency_minutes=10)

    # When the chart is drawn
    figure = streaming_figure(outcome)

    # Then every panel says what its y-axis counts, the bottom row that times are UTC, and so does the title
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_ylabel() for axis in panels] == ["views per 10 min", "views per 10 min"]
    assert {axis.get_xlabel() for axis in panels} == {"interval start (UTC)"}
    assert "(times in UTC)" in figure.get_suptitle()


def test_spark_logs_to_a_file_not_to_the_console() -> None:
    settings = dict(
        line.split("=", 1)
        for line in LOG4J2_CONFIGURATION.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    settings = {key.strip(): value.strip() for key, value in settings.items()}
    assert settings["rootLogger.appenderRef.file.ref"] == "file"
    assert settings["appender.file.type"] == "File"
    assert "Console" not in settings.values()
