"""Anomaly groups: membership, contributors and shares, level, continuity (hand-made verdicts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from anomaly_detector.groups import OpenGroup, describe_group, form_groups, root_cause
from anomaly_detector.metric_set import Measure, MetricSet
from anomaly_detector.scoring import DimensionScore

METRIC_SET = MetricSet(("platform", "marketplace"), (Measure("views", "sum"), Measure("revenue", "sum")))
T0 = datetime(2026, 12, 2, 14, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)
MEMBER_MIN = 23.8  # clearing level of threshold 47.6


def verdict(
    key: str, value: float, expected: float, severity: float = 0.0, ongoing: bool | None = None
) -> DimensionScore:
    return DimensionScore(
        dimension_value=key,
        value=value,
        status="scored",
        history_points=200,
        severity=severity,
        is_anomaly=severity >= 47.6,
        ongoing=severity >= 47.6 if ongoing is None else ongoing,
        expected=expected,
        expected_low=expected * 0.9,
        expected_high=expected * 1.1,
        direction="high" if value >= expected else "low",
        evidence="point",
        forecaster="daily",
    )


def normal_revenue(**overrides: tuple[float, float, float]) -> list[DimensionScore]:
    """Four leaves at their expected 100 each, roll-ups and total consistent; ``overrides`` key -> (value, exp, sev)."""
    leaves = {"web|de": (100.0, 100.0, 0.0), "web|us": (100.0, 100.0, 0.0), "ios|de": (100.0, 100.0, 0.0)}
    leaves["ios|us"] = (100.0, 100.0, 0.0)
    leaves |= {k: v for k, v in overrides.items() if k.count("|") == 1}
    scores = [
        verdict(f"revenue|platform={k.split('|')[0]}|marketplace={k.split('|')[1]}", *v) for k, v in leaves.items()
    ]
    for key, (value, expected, severity) in overrides.items():
        if key.count("|") != 1:
            scores.append(verdict(key, value, expected, severity))
    return scores


def groups_for(scores: list[DimensionScore], open_groups: dict[str, OpenGroup] | None = None, start: datetime = T0):
    return form_groups(scores, METRIC_SET, start, start + STEP, open_groups or {}, MEMBER_MIN)


def test_a_drop_in_one_leaf_puts_the_whole_root_cause_there() -> None:
    # Given revenue in web/de drops from 100 to 10, and the total is anomalous too
    scores = normal_revenue(**{"web|de": (10.0, 100.0, 91.2), "revenue|platform=*|marketplace=*": (310.0, 400.0, 60.0)})

    groups, still_open = groups_for(scores)

    [group] = groups
    assert group["group_id"] == "revenue-low-20261202T1405Z"
    assert (group["status"], group["direction"], group["level"], group["severity"]) == ("new", "low", "total", 91.2)
    [contributor] = group["contributors"]
    assert contributor["dimensions"] == {"platform": "web", "marketplace": "de"}
    assert contributor["share"] == 1.0
    assert (group["observed"], group["expected"]) == (10.0, 100.0)
    assert [s["series"] for s in group["anomalous_series"]] == [
        "revenue|platform=web|marketplace=de",
        "revenue|platform=*|marketplace=*",
    ]
    assert group["anomalous_series"][1]["dimensions"] == {"platform": "*", "marketplace": "*"}
    assert describe_group(group) == "revenue low, 100% in web/de"
    assert list(still_open) == ["revenue|low"]
    assert group["alerted"] is False and group["feedback"] is None and group["opened_at"] == "2026-12-02T14:05:00Z"


def test_a_drop_spread_thinly_is_seen_at_the_rollup_and_shared_by_the_leaves_below() -> None:
    # Given every de leaf drops a little (none anomalous on its own) and the de roll-up is anomalous;
    # the us leaves wobble upwards, which must not count for a "low" group
    scores = normal_revenue(
        **{
            "web|de": (70.0, 100.0, 10.0),
            "ios|de": (90.0, 100.0, 5.0),
            "web|us": (104.0, 100.0, 1.0),
            "revenue|platform=*|marketplace=de": (160.0, 200.0, 80.0),
        }
    )

    [group] = groups_for(scores)[0]

    assert group["level"] == "rollup" and group["severity"] == 80.0
    shares = {c["series"]: c["share"] for c in group["contributors"]}
    assert shares == {"revenue|platform=web|marketplace=de": 0.75, "revenue|platform=ios|marketplace=de": 0.25}
    assert group["contributors"][0]["series"] == "revenue|platform=web|marketplace=de"
    assert (group["observed"], group["expected"]) == (160.0, 200.0)
    assert root_cause(group) == "75% in web/de"


def test_two_directions_in_one_interval_make_two_groups() -> None:
    scores = normal_revenue(**{"web|de": (10.0, 100.0, 70.0), "ios|us": (300.0, 100.0, 90.0)})

    groups, still_open = groups_for(scores)

    assert [(g["group_id"], g["direction"]) for g in groups] == [
        ("revenue-high-20261202T1405Z", "high"),
        ("revenue-low-20261202T1405Z", "low"),
    ]
    assert groups[0]["contributors"][0]["dimensions"] == {"platform": "ios", "marketplace": "us"}
    assert set(still_open) == {"revenue|low", "revenue|high"}


def test_an_ongoing_group_keeps_its_id_and_a_reopened_one_gets_a_new_id() -> None:
    drop = {"web|de": (10.0, 100.0, 91.2)}
    first, open_after_first = groups_for(normal_revenue(**drop))
    open_after_first = {k: OpenGroup(v.group_id, v.opened_at, alerted=True) for k, v in open_after_first.items()}

    # Next interval: still anomalous (ongoing, quieter but above the clearing level)
    still = {"web|de": (40.0, 100.0, 30.0)}
    scores = [
        verdict(s.dimension_value, s.value, s.expected or 0, s.severity, ongoing=True) if s.severity else s
        for s in normal_revenue(**still)
    ]
    second, open_after_second = groups_for(scores, open_after_first, T0 + STEP)
    assert second[0]["group_id"] == first[0]["group_id"] and second[0]["status"] == "ongoing"
    assert second[0]["opened_at"] == "2026-12-02T14:05:00Z" and second[0]["alerted"] is True
    assert second[0]["interval_start"] == "2026-12-02T14:10:00Z"

    # Then a quiet interval closes it ...
    third, open_after_third = groups_for(normal_revenue(), open_after_second, T0 + 2 * STEP)
    assert third == [] and open_after_third == {}
    # ... and a new drop opens a new group with a new id
    fourth, _ = groups_for(normal_revenue(**drop), open_after_third, T0 + 3 * STEP)
    assert fourth[0]["group_id"] == "revenue-low-20261202T1420Z" and fourth[0]["status"] == "new"


def test_a_quiet_interval_inside_a_series_open_anomaly_is_not_a_member() -> None:
    # Ongoing for the model, but below the clearing level: no group
    scores = [verdict("revenue|platform=web|marketplace=de", 95.0, 100.0, 5.0, ongoing=True)]
    assert groups_for(scores)[0] == []


@pytest.mark.parametrize("measure", ["views", "revenue"])
def test_groups_are_per_measure(measure: str) -> None:
    key = f"{measure}|platform=web|marketplace=de"
    [group] = groups_for([verdict(key, 10.0, 100.0, 80.0)])[0]
    assert group["measure"] == measure and group["aggregation"] == "sum"


def test_the_return_to_normal_inside_a_series_open_anomaly_opens_no_group_of_its_own() -> None:
    # Given a spike's group is open, and the series now comes back (judged "low" inside its open anomaly)
    spike = groups_for(normal_revenue(**{"web|de": (400.0, 100.0, 90.0)}))[1]
    back = verdict("revenue|platform=web|marketplace=de", 100.0, 300.0, 55.0, ongoing=True)
    back = DimensionScore(**{**back.__dict__, "is_anomaly": False})

    groups, still_open = groups_for([back], spike, T0 + STEP)

    # Then no "low" group opens and the "high" group closes (nothing loud in its direction)
    assert groups == [] and still_open == {}


def test_a_group_says_what_is_unusual_about_its_most_severe_series() -> None:
    # Given web/de is a little low (point evidence) and the total's last values sit well below its usual level
    scores = normal_revenue(**{"web|de": (80.0, 100.0, 50.0)})
    total = verdict("revenue|platform=*|marketplace=*", 380.0, 390.0, 70.0)
    total = DimensionScore(**{**total.__dict__, "evidence": "shift", "mean_shift": -35.25})

    [group] = groups_for([*scores, total])[0]

    # Then the group's evidence is the total's (its most severe series), and every series entry has its own
    assert group["evidence"] == "shift"
    assert [(s["series"], s["evidence"], s["mean_shift"]) for s in group["anomalous_series"]] == [
        ("revenue|platform=*|marketplace=*", "shift", -35.25),
        ("revenue|platform=web|marketplace=de", "point", None),
    ]
