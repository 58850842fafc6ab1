"""out/report.html opened from disk in a real headless Chromium (the shared `browser` fixture, tests/conftest.py):
the charts render, the group table has its rows, the console stays clean and nothing is fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import CONFIG, REVENUE_LOW_ID, VIEWS_HIGH_ID, build_out_folder

from local_mode.report_page import build_report_page

pytestmark = pytest.mark.browser


def _requested_urls(browser: Any, document: str) -> list[str]:
    """Every URL `document` (or a frame of it) asked for, from the DevTools network events in the performance
    log; the browser's own start page loads chrome:// resources alongside, which are not the page's."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent" and params.get("documentURL") == document:
            urls.append(params["request"]["url"])
    return urls


def _console_errors(browser: Any) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]


def test_the_report_renders_its_charts_and_groups_with_a_clean_console_and_no_requests(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    # Given a report built from an out folder with three measures, two groups and a pipeline run
    page = build_report_page(build_out_folder(tmp_path / "out"), CONFIG)

    # When it is opened from disk
    browser.get(page.as_uri())

    # Then every measure's chart is drawn: an SVG of nonzero size holding a line of nonzero extent
    for measure in CONFIG.measures:
        section = browser.find_element(By.CSS_SELECTOR, f'section[data-measure="{measure.name}"]')
        chart = section.find_element(By.CSS_SELECTOR, "svg.chart")
        assert chart.size["width"] > 100 and chart.size["height"] > 50, measure.name
        line = chart.find_element(By.CSS_SELECTOR, "polyline.total")
        box = browser.execute_script("const b = arguments[0].getBBox(); return [b.width, b.height];", line)
        assert box[0] > 100, (measure.name, box)
    # And the anomaly groups are shaded on their measure's chart, visibly
    revenue_spans = browser.find_elements(By.CSS_SELECTOR, 'section[data-measure="revenue"] rect.span.low')
    assert len(revenue_spans) == 2 and all(span.size["width"] > 0 for span in revenue_spans)
    # And the group table has one row per group, with the root cause
    rows = browser.find_elements(By.CSS_SELECTOR, "#groups tbody tr.group")
    assert [row.get_attribute("data-group-id") for row in rows] == [VIEWS_HIGH_ID, REVENUE_LOW_ID]
    assert "79% in web/de" in rows[1].text
    assert browser.find_element(By.CSS_SELECTOR, "#pipeline-chart").size["height"] > 50
    # And the console logged no error (a CSP violation would be one), and the file was the only request
    assert _console_errors(browser) == []
    assert {url for url in _requested_urls(browser, page.as_uri()) if not url.startswith("data:")} == {page.as_uri()}


def test_the_checks_catch_a_page_that_tries_to_load_something(browser: Any, tmp_path: Path) -> None:
    # Given the same report with an external image slipped in (as an unescaped value could do)
    page = build_report_page(build_out_folder(tmp_path / "out"), CONFIG)
    page.write_text(
        page.read_text(encoding="utf-8").replace("</body>", '<img src="http://127.0.0.1:9/pixel.png"></body>'),
        encoding="utf-8",
    )

    # When it is opened
    browser.get(page.as_uri())

    # Then both checks above would fail: the attempt shows among the page's requests (DevTools reports it before
    # the CSP blocks it), and the console reports the CSP violation
    assert "http://127.0.0.1:9/pixel.png" in _requested_urls(browser, page.as_uri())
    errors = _console_errors(browser)
    assert any("Content Security Policy" in entry["message"] for entry in errors), errors
