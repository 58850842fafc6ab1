"""The metric set: measures and dimensions from cdk.json; a bad one fails with the setting's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app_config import ConfigError, MeasureSpec, load_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
ENVIRONMENTS = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["environments"]


def streaming(env: str = "dev", **settings: Any) -> Any:
    raw = {"x": {**ENVIRONMENTS[env], "streaming": {**ENVIRONMENTS[env]["streaming"], **settings}}}
    return load_environment(raw, "x").streaming


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_defaults_are_the_reference_schema(env: str) -> None:
    config = streaming(env)
    assert config.measures == (MeasureSpec("views", "sum"), MeasureSpec("revenue", "sum"))
    assert config.dimensions == ("platform", "marketplace")


def test_a_count_measure_and_five_dimensions_are_accepted() -> None:
    config = streaming(
        measures=[{"name": "orders", "aggregation": "count"}, {"name": "revenue"}],
        dimensions=["a", "b", "c", "d", "e"],
    )
    assert config.measures == (MeasureSpec("orders", "count"), MeasureSpec("revenue", "sum"))
    assert config.dimensions == ("a", "b", "c", "d", "e")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"measures": []}, "streaming.measures must list 1..5 measures, got 0"),
        ({"measures": [{"name": f"m{i}"} for i in range(6)]}, "streaming.measures must list 1..5 measures, got 6"),
        ({"dimensions": [f"d{i}" for i in range(6)]}, "streaming.dimensions must list 1..5 columns, got 6"),
        ({"dimensions": []}, "streaming.dimensions must list 1..5 columns, got 0"),
        ({"measures": [{"name": "views", "aggregation": "avg"}]}, "streaming.measures[0].aggregation must be"),
        ({"measures": [{"name": "view|s"}]}, "streaming.measures[0].name must be a column name"),
        ({"measures": [{"name": "views", "agg": "sum"}]}, "streaming.measures[0] must be"),
        ({"measures": "views"}, "streaming.measures must be a list"),
        ({"dimensions": "platform"}, "streaming.dimensions must be a list of column names"),
        ({"dimensions": ["platform", "1st"]}, "streaming.dimensions[1] must be a column name"),
        ({"dimensions": ["platform", "platform"]}, "name platform more than once"),
        ({"dimensions": ["views"]}, "streaming.measures and streaming.dimensions both name views"),
        ({"dimensions": ["event_time"]}, "streaming.timestamp_column 'event_time' cannot also be"),
    ],
)
def test_a_bad_metric_set_names_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("|", r"\|")):
        streaming(**settings)


def test_the_old_one_column_settings_point_to_the_metric_set() -> None:
    with pytest.raises(ConfigError, match="dimension_column replaced by the metric set: dimensions"):
        streaming(dimension_column="marketplace")
