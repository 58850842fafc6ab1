"""The scale bench measures what it says: a state of N opaque series keys, scored once, and the S3 requests."""

from __future__ import annotations

from pathlib import Path

from bench import scale


def test_a_case_scores_every_series_and_reports_its_state(tmp_path: Path) -> None:
    state_path, totals_path = scale.write_case(tmp_path, 10)
    result = scale.measure_interval(state_path, totals_path)
    assert result["scored"] == 10
    assert result["state_bytes"] > 10 * 1000  # two weeks learnt: every model has its profiles
    assert result["cpu_s"] >= 0 and result["peak_rss_mib"] > 0


def test_one_live_interval_costs_a_fixed_number_of_s3_requests() -> None:
    calls = scale.count_s3_requests_per_interval()
    # state GET, LIST, totals.json GET (absent), 10 batch CSVs; totals.json PUT, state PUT
    assert calls == {"GetObject": 12, "ListObjectsV2": 1, "PutObject": 2}
