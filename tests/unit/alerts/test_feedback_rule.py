"""Feedback labels: the suppression rule, the latest label winning, and the two stores."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from alert_group_records import series, web_de_revenue_drop, web_rollup_drop
from anomaly_detector.feedback import (
    SUPPRESSION_MARGIN,
    FeedbackError,
    FeedbackLabel,
    LocalFeedbackStore,
    S3FeedbackStore,
    apply_feedback,
    check_group_id,
    suppressing_label,
)
from moto import mock_aws

YESTERDAY = web_de_revenue_drop(group_id="revenue-low-20261201T1405Z")


def _label(group: dict, verdict: str = "not_anomaly", at: str = "2026-12-01T15:00:00Z") -> FeedbackLabel:
    return FeedbackLabel.from_group(group, verdict=verdict, recorded_at=at)  # type: ignore[arg-type]


class TestSuppression:
    def test_the_labelled_pattern_is_suppressed(self) -> None:
        label = _label(YESTERDAY)
        assert label.series == (
            "revenue|platform=app|marketplace=fr",
            "revenue|platform=web|marketplace=de",
        )
        assert suppressing_label(web_de_revenue_drop(), [label]) == label

    def test_a_different_series_at_the_same_level_still_alerts(self) -> None:
        elsewhere = web_de_revenue_drop(
            anomalous_series=[series("revenue", "combination", 90.0, 1.0, 9.0, platform="app", marketplace="uk")]
        )
        assert suppressing_label(elsewhere, [_label(YESTERDAY)]) is None

    def test_the_other_direction_still_alerts(self) -> None:
        spike = web_de_revenue_drop(direction="high", observed=3000.0)
        assert suppressing_label(spike, [_label(YESTERDAY)]) is None

    def test_another_measure_still_alerts(self) -> None:
        assert suppressing_label(web_de_revenue_drop(measure="views"), [_label(YESTERDAY)]) is None

    def test_another_level_still_alerts(self) -> None:
        # The web/* roll-up is anomalous as well today: a combination-level label does not cover it.
        assert suppressing_label(web_rollup_drop(), [_label(YESTERDAY)]) is None

    def test_a_somewhat_bigger_deviation_is_within_the_margin(self) -> None:
        # Labelled: 1100 observed vs 2125 expected (48% low). Today 60% low: within 1.5 x 48% = 72%.
        assert suppressing_label(web_de_revenue_drop(observed=850.0), [_label(YESTERDAY)]) is not None

    def test_a_much_bigger_deviation_still_alerts(self) -> None:
        limit = (2125.0 - 1100.0) / 2125.0 * (1 + SUPPRESSION_MARGIN)
        observed = 2125.0 * (1 - limit) - 1.0  # just beyond the margin
        assert suppressing_label(web_de_revenue_drop(observed=observed), [_label(YESTERDAY)]) is None

    def test_a_later_anomaly_label_for_the_pattern_overrides_an_earlier_not_anomaly(self) -> None:
        earlier = _label(YESTERDAY, "not_anomaly", "2026-12-01T15:00:00Z")
        confirmed = _label(
            web_de_revenue_drop(group_id="revenue-low-20261201T1800Z"), "anomaly", "2026-12-01T19:00:00Z"
        )
        assert suppressing_label(web_de_revenue_drop(), [earlier, confirmed]) is None

    def test_a_not_anomaly_label_after_the_confirmation_suppresses_again(self) -> None:
        confirmed = _label(YESTERDAY, "anomaly", "2026-12-01T15:00:00Z")
        later = _label(
            web_de_revenue_drop(group_id="revenue-low-20261201T1800Z"), "not_anomaly", "2026-12-01T19:00:00Z"
        )
        assert suppressing_label(web_de_revenue_drop(), [confirmed, later]) == later


class TestApplyFeedback:
    def test_a_groups_own_latest_label_is_in_force(self) -> None:
        group = web_de_revenue_drop()
        labels = [
            _label(group, "not_anomaly", "2026-12-02T15:00:00Z"),
            _label(group, "anomaly", "2026-12-02T16:00:00Z"),
        ]
        assert apply_feedback([group], labels)[0]["feedback"] == "anomaly"
        assert group["feedback"] is None  # the input is left as it was

    def test_a_suppressed_group_shows_not_anomaly_and_others_none(self) -> None:
        marked = apply_feedback([web_de_revenue_drop(), web_rollup_drop()], [_label(YESTERDAY)])
        assert [group["feedback"] for group in marked] == ["not_anomaly", None]


class TestStores:
    def test_local_store_round_trip_and_rewrite_replaces(self, tmp_path: Path) -> None:
        store = LocalFeedbackStore(tmp_path / "feedback")
        assert store.read_labels() == []
        first = _label(YESTERDAY, "not_anomaly", "2026-12-01T15:00:00Z")
        location = store.write_label(first)
        assert location == str(tmp_path / "feedback" / "revenue-low-20261201T1405Z.json")
        second = FeedbackLabel.from_group(YESTERDAY, verdict="anomaly", recorded_at="2026-12-01T16:00:00Z", note="real")
        store.write_label(second)
        assert store.read_labels() == [second]

    def test_a_malformed_label_file_is_skipped_not_fatal(self, tmp_path: Path) -> None:
        store = LocalFeedbackStore(tmp_path)
        store.write_label(_label(YESTERDAY))
        (tmp_path / "revenue-high-20261201T1405Z.json").write_text('{"verdict": "maybe"}')
        assert [label.group_id for label in store.read_labels()] == ["revenue-low-20261201T1405Z"]

    @mock_aws
    def test_s3_store_round_trip(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        store = S3FeedbackStore(s3, "data", "metrics/feedback/")
        label = _label(YESTERDAY)
        assert store.write_label(label) == "s3://data/metrics/feedback/revenue-low-20261201T1405Z.json"
        assert store.read_labels() == [label]

    def test_group_ids_are_checked_before_they_become_keys(self) -> None:
        with pytest.raises(FeedbackError, match=r"'../etc' is not a group id"):
            check_group_id("../etc")
