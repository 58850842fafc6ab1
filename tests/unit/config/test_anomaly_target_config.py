"""streaming.anomaly_target: which measure and combination the generator's injected anomaly hits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from metrics_generator.config import parse_anomaly_target
from metrics_generator.records import DIMENSION_VALUES, MEASURES, InjectedAnomaly

from app_config import AnomalyTarget, ConfigError, load_environment
from app_config.settings import GENERATOR_DIMENSION_VALUES, GENERATOR_MEASURES

REPO_ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]
REVENUE_IN_WEB_DE = {"measure": "revenue", "dimensions": {"platform": "web", "marketplace": "de"}, "factor": 0.2}


def streaming(env: str = "dev", **settings: Any) -> Any:
    raw = {"x": {**ENVIRONMENTS[env], "streaming": {**ENVIRONMENTS[env]["streaming"], **settings}}}
    return load_environment(raw, "x").streaming


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_anomaly_is_injected_by_default(env: str) -> None:
    assert ENVIRONMENTS[env]["streaming"]["anomaly_target"] is None
    assert streaming(env).anomaly_target is None


def test_a_target_names_a_measure_a_combination_and_a_factor() -> None:
    config = streaming(anomaly_target=REVENUE_IN_WEB_DE)
    assert config.anomaly_target == AnomalyTarget("revenue", (("platform", "web"), ("marketplace", "de")), 0.2)


def test_a_target_may_name_a_subset_of_the_dimensions_or_none() -> None:
    assert streaming(anomaly_target={"measure": "views", "dimensions": {"platform": "android"}, "factor": 3})
    assert streaming(anomaly_target={"measure": "views", "factor": 0.5}).anomaly_target.dimensions == ()


def test_the_generator_reads_back_what_the_config_writes() -> None:
    target = streaming(anomaly_target=REVENUE_IN_WEB_DE).anomaly_target
    assert parse_anomaly_target(target.as_json()) == InjectedAnomaly(
        "revenue", {"platform": "web", "marketplace": "de"}, 0.2
    )


def test_the_configs_generator_values_are_the_generators() -> None:
    assert GENERATOR_MEASURES == MEASURES
    assert GENERATOR_DIMENSION_VALUES == DIMENSION_VALUES


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("de", "streaming.anomaly_target must be null or"),
        ({"measure": "views", "factor": 2, "window": 1}, "streaming.anomaly_target must be null or"),
        ({"dimensions": {}, "factor": 2}, "streaming.anomaly_target.measure must be a measure name"),
        ({"measure": "orders", "factor": 2}, r"streaming.anomaly_target.measure must be one of streaming.measures"),
        ({"measure": "views", "dimensions": ["web"], "factor": 2}, "streaming.anomaly_target.dimensions must map"),
        ({"measure": "views", "dimensions": {"platform": 1}, "factor": 2}, "streaming.anomaly_target.dimensions"),
        ({"measure": "views", "dimensions": {"device": "tv"}, "factor": 2}, "not in streaming.dimensions"),
        ({"measure": "views", "dimensions": {"platform": " "}, "factor": 2}, "platform must be a non-empty value"),
        (
            {"measure": "views", "dimensions": {"marketplace": "fr"}, "factor": 2},
            r"streaming.anomaly_target.dimensions.marketplace must be one of the generator's values",
        ),
        ({"measure": "views"}, "streaming.anomaly_target.factor must be a number"),
        ({"measure": "views", "factor": "2"}, "streaming.anomaly_target.factor must be a number"),
        ({"measure": "views", "factor": True}, "streaming.anomaly_target.factor must be a number"),
        ({"measure": "views", "factor": 0}, r"streaming.anomaly_target.factor must be a number > 0 and not 1"),
        ({"measure": "views", "factor": -2}, r"streaming.anomaly_target.factor must be a number > 0 and not 1"),
        ({"measure": "views", "factor": 1}, r"streaming.anomaly_target.factor must be a number > 0 and not 1"),
    ],
)
def test_a_bad_target_names_the_setting(target: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        streaming(anomaly_target=target)


def test_with_the_generator_on_the_target_must_be_something_it_produces() -> None:
    # Given a metric set with a measure and a dimension the generator does not produce, and a count measure
    metric_set = {
        "measures": [{"name": "views", "aggregation": "count"}, {"name": "orders"}],
        "dimensions": ["platform", "device"],
    }
    for target, message in (
        ({"measure": "orders", "factor": 2}, "measure 'orders' is not produced by the generator"),
        ({"measure": "views", "factor": 2}, "aggregated by count"),
    ):
        with pytest.raises(ConfigError, match=message):
            streaming(**metric_set, anomaly_target=target)
    device = {"measure": "views", "dimensions": {"device": "tv"}, "factor": 2}
    with pytest.raises(ConfigError, match="the generator does not produce 'device'"):
        streaming(measures=[{"name": "views"}], dimensions=["platform", "device"], anomaly_target=device)


def test_with_the_generator_off_the_target_is_only_checked_against_the_metric_set() -> None:
    # prod keeps the generator off; a target there names the metric set's own fields
    config = streaming(
        "prod",
        generator_enabled=False,
        dimensions=["platform", "device"],
        anomaly_target={"measure": "views", "dimensions": {"device": "tv"}, "factor": 2},
    )
    assert config.anomaly_target is not None


def test_the_old_single_marketplace_settings_point_to_the_new_one() -> None:
    with pytest.raises(ConfigError, match="anomaly_marketplace replaced by anomaly_target"):
        streaming(anomaly_marketplace="de")
