"""Which groups alert (threshold, once per group, feedback) and what the subject and message say."""

from __future__ import annotations

import json

import pytest
from alert_group_records import contributor, series, web_de_revenue_drop, web_rollup_drop
from anomaly_detector.alerts import (
    SUBJECT_MAX_CHARS,
    alert_message,
    alert_subject,
    groups_to_alert,
    root_cause_text,
    trim_record,
)
from anomaly_detector.feedback import FeedbackLabel


def _printable_ascii(text: str) -> bool:
    return all(" " <= char <= "~" for char in text)


class TestGroupsToAlert:
    def test_a_new_group_at_or_above_the_threshold_alerts(self) -> None:
        at_threshold = web_de_revenue_drop(severity=70.0)
        assert groups_to_alert([at_threshold], min_severity=70.0, labels=[]) == [at_threshold]

    def test_a_new_group_below_the_threshold_does_not(self) -> None:
        assert groups_to_alert([web_de_revenue_drop(severity=69.9)], min_severity=70.0, labels=[]) == []

    def test_an_ongoing_group_that_already_alerted_is_not_announced_again(self) -> None:
        # Given the group alerted when it opened; When it goes on, even more severe; Then no second alert.
        ongoing = web_de_revenue_drop(status="ongoing", alerted=True, severity=99.0)
        assert groups_to_alert([ongoing], min_severity=70.0, labels=[]) == []

    def test_an_ongoing_group_that_opened_below_the_threshold_alerts_once_it_reaches_it(self) -> None:
        opened_quietly = web_de_revenue_drop(status="ongoing", alerted=False, severity=75.0)
        assert groups_to_alert([opened_quietly], min_severity=70.0, labels=[]) == [opened_quietly]

    def test_a_not_anomaly_label_for_the_same_pattern_keeps_the_group_quiet(self) -> None:
        labelled = web_de_revenue_drop(group_id="revenue-low-20261201T1405Z")
        label = FeedbackLabel.from_group(labelled, verdict="not_anomaly", recorded_at="2026-12-01T15:00:00Z")
        assert groups_to_alert([web_de_revenue_drop()], min_severity=70.0, labels=[label]) == []


class TestSubject:
    def test_combination_subject_names_measure_direction_place_severity_and_interval(self) -> None:
        # 78% in web/de is enough for the root cause (>= 50%), so app/fr is not in the subject.
        assert alert_subject(web_de_revenue_drop()) == "revenue low in web/de, severity 87, 14:05-14:10 UTC"

    def test_root_cause_adds_contributors_until_half_the_deviation(self) -> None:
        spread = web_de_revenue_drop(
            contributors=[
                contributor("revenue", 0.4, 80.0, 1.0, 2.0, platform="web", marketplace="de"),
                contributor("revenue", 0.3, 70.0, 1.0, 2.0, platform="app", marketplace="fr"),
                contributor("revenue", 0.3, 60.0, 1.0, 2.0, platform="app", marketplace="uk"),
            ]
        )
        assert root_cause_text(spread) == "40% in web/de, 30% in app/fr"
        assert alert_subject(spread).startswith("revenue low in web/de + app/fr, severity 87")

    def test_rollup_subject_says_all_of_the_rolled_up_dimension(self) -> None:
        assert alert_subject(web_rollup_drop()) == (
            "revenue low in web (all marketplaces), severity 87, 16:00-16:05 UTC"
        )

    def test_total_level_subject(self) -> None:
        # Given a group seen only in the total (no roll-up or combination of it is anomalous on its own)
        only_total = [s for s in web_rollup_drop()["anomalous_series"] if s["level"] == "total"]
        group = web_rollup_drop(level="total", anomalous_series=only_total)
        assert alert_subject(group).startswith("revenue low in all platforms and marketplaces, severity 87")

    def test_a_concentrated_cause_is_named_even_when_the_total_moved_most(self) -> None:
        # Given a spike carried by one combination, anomalous there, in its roll-up and in the total
        group = web_rollup_drop(
            level="total",
            contributors=[contributor("revenue", 1.0, 90.0, 900.0, 300.0, platform="web", marketplace="de")],
            anomalous_series=[
                series("revenue", "combination", 90.0, 900.0, 300.0, platform="web", marketplace="de"),
                series("revenue", "rollup", 80.0, 1500.0, 900.0, platform="web", marketplace="*"),
                series("revenue", "total", 70.0, 3600.0, 3000.0, platform="*", marketplace="*"),
            ],
        )
        # Then the subject says where to look: the combination, not "all platforms and marketplaces"
        assert alert_subject(group).startswith("revenue low in web/de, severity 87")

    def test_subject_is_printable_ascii_within_the_sns_limit_whatever_the_values(self) -> None:
        # Given dimension values with accents, a line break and a very long name
        strange = web_de_revenue_drop(
            contributors=[
                contributor("revenue", 0.9, 95.0, 1.0, 9.0, platform="wéb\nshop", marketplace="München" * 20),
            ]
        )
        subject = alert_subject(strange)
        assert len(subject) <= SUBJECT_MAX_CHARS < 100
        assert _printable_ascii(subject)
        assert subject.startswith("revenue low in web?shop/Munchen")
        assert subject.endswith("..., severity 87, 14:05-14:10 UTC")


class TestMessage:
    def test_message_has_readable_text_then_the_whole_record(self) -> None:
        group = web_de_revenue_drop()
        message = alert_message(group)
        text, _, record = message.partition("Record:\n")
        assert "revenue (sum) is low in web/de: severity 87 of 100." in text
        assert "Interval: 2026-12-02 14:05-14:10 UTC (group new, opened 2026-12-02 14:05 UTC)." in text
        assert "Observed 1,100, expected 2,125 (-48.2%)." in text
        assert "Root cause: 78% in web/de." in text
        assert "  78% web/de: observed 100, expected 900, severity 91" in text
        assert "streaming_cli feedback revenue-low-20261202T1405Z --not-anomaly" in text
        assert json.loads(record) == group

    def test_a_point_anomaly_says_the_value_itself_left_its_expected_range(self) -> None:
        # Given web/de's revenue fell to 100 where 810-990 was expected
        message = alert_message(web_de_revenue_drop())

        assert "Unusual: the value itself: web/de was 100, outside its expected range of 810 to 990.\n" in message

    def test_a_point_anomaly_with_an_unbounded_range_names_the_side_it_crossed(self) -> None:
        group = web_de_revenue_drop()
        group["anomalous_series"][0]["expected_low"] = None  # a heavy tail: no value too low

        assert "web/de was 100, above the 990 expected at most." in alert_message(group)

    def test_a_shift_anomaly_says_it_is_the_last_intervals_together(self) -> None:
        # Given the group's most severe series is anomalous on its last values' mean, not on this one value
        group = web_de_revenue_drop(evidence="shift")
        group["anomalous_series"][0]["mean_shift"] = -412.5

        text = alert_message(group).partition("Record:\n")[0]

        assert (
            "Unusual: a lasting shift: web/de's last 6 intervals averaged -412.5 from its usual level "
            "(one alone can look ordinary)." in text
        )
        assert text.index("Unusual:") < text.index("Root cause:")
        # And a large shift is given in whole units, as the reader wants it
        group["anomalous_series"][0]["mean_shift"] = 12345.678
        assert "web/de's last 6 intervals averaged +12,346 from its usual level" in alert_message(group)

    def test_a_volatility_anomaly_says_it_is_how_the_series_moves(self) -> None:
        text = alert_message(web_de_revenue_drop(evidence="volatility"))

        assert "Unusual: how web/de moves: over the last 18 intervals its changes from one interval" in text
        assert "whatever its level." in text

    def test_a_record_without_evidence_has_no_unusual_line(self) -> None:
        # Given a record written before groups carried their evidence (or by another producer)
        group = web_de_revenue_drop()
        del group["evidence"]

        message = alert_message(group)

        assert "Unusual:" not in message
        assert "Root cause: 78% in web/de." in message

    def test_a_huge_group_is_trimmed_to_fit_and_says_so(self) -> None:
        many = [
            contributor("revenue", 0.0, 50.0, 1.0, 2.0, platform="web", marketplace=f"m{i:05d}") for i in range(5000)
        ]
        group = web_de_revenue_drop(contributors=many)
        message = alert_message(group)
        assert len(message.encode("utf-8")) <= 256 * 1024
        record = json.loads(message.partition("Record:\n")[2])
        assert record["trimmed"] == {"contributors": 5000}
        assert 0 < len(record["contributors"]) < 5000

    @pytest.mark.parametrize("limit", [2_000, 50_000])
    def test_trim_record_fits_the_limit(self, limit: int) -> None:
        many = [contributor("revenue", 0.0, 50.0, 1.0, 2.0, platform="web", marketplace=f"m{i}") for i in range(2000)]
        trimmed = trim_record(web_de_revenue_drop(contributors=many), limit)
        assert len(json.dumps(trimmed, indent=2).encode()) <= limit
