"""The report page builder: totals read by column name, one table row per group, escaping, empty folders."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import (
    CONFIG,
    HOSTILE_MARKETPLACE,
    REVENUE_LOW_ID,
    START,
    VIEWS_HIGH_ID,
    build_out_folder,
    write_interval,
)

from local_mode.report_page import REPORT_FILE, build_report_page
from local_mode.report_page.__main__ import main as report_page_main
from local_mode.report_page.data import read_measure_totals, read_report_data
from local_mode.report_page.page import CONTENT_SECURITY_POLICY


class _Rows(HTMLParser):
    """The group table's rows: group id -> the text of each cell."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("class") == "group":
            self._row = values["data-group-id"] or ""
            self.rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")  # a line break reads as a space, as it does on the page

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self.rows[self._row].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _group_rows(html: str) -> dict[str, list[str]]:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return build_out_folder(tmp_path / "out")


def test_totals_are_read_by_column_name_and_follow_each_aggregation(out: Path) -> None:
    # Given interval files whose columns are in an unusual order, with blank and non-numeric cells
    # When the totals are read
    problems: list[str] = []
    views, revenue, orders = read_measure_totals(out / "streaming", CONFIG.measures, problems)

    # Then sum adds the numeric cells (both batches of the first interval), count counts the non-empty cells
    assert problems == []
    assert views.totals[START] == 15.0 and views.totals[START + timedelta(minutes=10)] == 7.0
    assert revenue.totals[START] == 12.0 and revenue.totals[START + timedelta(minutes=5)] == 10.5
    assert orders.totals[START] == 3.0 and orders.totals[START + timedelta(minutes=5)] == 2.0
    assert len(views.totals) == 24


def test_each_group_is_one_row_with_its_root_cause_summed_over_its_intervals(out: Path) -> None:
    # Given a revenue group over two intervals and a views group with a label written after it
    # When the page is built
    html = build_report_page(out, CONFIG).read_text(encoding="utf-8")

    # Then the table has one row per group, newest first
    rows = _group_rows(html)
    assert list(rows) == [VIEWS_HIGH_ID, REVENUE_LOW_ID]
    when, measure, direction, severity, versus, root_cause, status, alerted, feedback = rows[REVENUE_LOW_ID]
    assert when.startswith("2026-12-02 13:00\N{EN DASH}13:10") and "2 intervals" in when
    # (the severity with what was unusual in the group's most severe interval)
    assert (measure, direction, severity, status, alerted, feedback) == (
        "revenue",
        "low",
        "87.3 a lasting shift",
        "ongoing",
        "yes",
        "—",
    )
    # observed 78 + 18 vs expected 168 + 128; web/de's deviation 78 + 88 of 210 (web/us was on the wrong side)
    assert versus == "96 vs 296 (-68%)"
    assert root_cause.startswith("79% in web/de")
    assert "web/us: 0%" in root_cause
    # And the label file wins over the record's own (null) feedback
    assert rows[VIEWS_HIGH_ID][-1] == "not an anomaly"
    # And a record without evidence (written before groups carried it) shows the severity alone
    assert rows[VIEWS_HIGH_ID][3] == "72.0"


def test_dimension_values_from_user_data_are_escaped(out: Path) -> None:
    html = build_report_page(out, CONFIG).read_text(encoding="utf-8")

    assert HOSTILE_MARKETPLACE not in html
    assert "<script" not in html
    assert "ios/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;: 21%" in html


def test_the_page_is_self_contained_and_sends_a_strict_csp(out: Path) -> None:
    html = build_report_page(out, CONFIG).read_text(encoding="utf-8")

    assert (
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'.replace("'", "&#x27;")
        in html
    )
    assert not re.search(r"(https?:)?//[a-z]", html, re.IGNORECASE)
    assert not re.search(r"<(script|iframe|object|embed|img)\b", html)
    # One chart per measure, the groups shaded on their measure's chart, plus the pipeline's chart
    assert html.count('<svg class="chart"') == 4
    assert html.count('class="span low"') == 2 and html.count('class="span high"') == 1
    assert 'id="pipeline-events"' in html and "#1" in html and "812 vs 420 (+93%)" in html


def test_an_empty_out_folder_gives_a_page_that_says_so(tmp_path: Path) -> None:
    html = build_report_page(tmp_path, CONFIG).read_text(encoding="utf-8")

    assert 'id="no-intervals"' in html and "No anomaly groups in this run." in html
    assert html.count("no data</text>") == len(CONFIG.measures)
    assert _group_rows(html) == {} and 'id="pipeline"' not in html and 'id="problems"' not in html


def test_unreadable_inputs_are_listed_on_the_page_not_raised(out: Path) -> None:
    # Given a broken line among the group records and interval files without the configured count column
    anomalies = next((out / "streaming").rglob("groups.jsonl"))
    with anomalies.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n" + json.dumps(["a list"]) + "\n")
    for path in (out / "streaming").rglob("*.csv"):
        path.unlink()
    write_interval(out / "streaming", START, ["event_time", "platform", "marketplace", "views", "revenue"], [])

    # When the page is built
    data = read_report_data(out, CONFIG)

    # Then each problem is named, and the readable groups are all still there
    assert any("groups.jsonl line" in problem and "not a group record" in problem for problem in data.problems)
    assert any("'order_id'" in problem for problem in data.problems)
    assert {group.group_id for group in data.groups} == {REVENUE_LOW_ID, VIEWS_HIGH_ID}
    assert data.measures[0].totals == {START: 0.0}


def test_the_module_rebuilds_the_page_from_the_out_folder(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_page_main(["--out", str(out)]) == 0
    assert (out / REPORT_FILE).is_file()
    assert capsys.readouterr().out.strip() == str(out / REPORT_FILE)
    assert report_page_main(["--out", str(out / "missing")]) == 2
