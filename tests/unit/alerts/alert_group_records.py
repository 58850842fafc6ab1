"""Small anomaly group records shaped like the contract's (I14_CONTRACT.md), for the alert and feedback tests."""

from __future__ import annotations

import copy
from typing import Any


def series(measure: str, level: str, severity: float, observed: float, expected: float, **dims: str) -> dict[str, Any]:
    key = "|".join([measure, *(f"{name}={value}" for name, value in dims.items())])
    return {
        "series": key,
        "level": level,
        "dimensions": dict(dims),
        "severity": severity,
        "observed": observed,
        "expected": expected,
        "expected_low": expected * 0.9,
        "expected_high": expected * 1.1,
        "evidence": "point",
        "mean_shift": observed - expected,
    }


def contributor(measure: str, share: float, severity: float, observed: float, expected: float, **dims: str):
    return {
        "series": "|".join([measure, *(f"{name}={value}" for name, value in dims.items())]),
        "dimensions": dict(dims),
        "observed": observed,
        "expected": expected,
        "share": share,
        "severity": severity,
    }


def web_de_revenue_drop(**changes: Any) -> dict[str, Any]:
    """revenue low, 78% of it in web/de, at the combination level; ``changes`` override fields."""
    group: dict[str, Any] = {
        "group_id": "revenue-low-20261202T1405Z",
        "status": "new",
        "measure": "revenue",
        "aggregation": "sum",
        "interval_start": "2026-12-02T14:05:00Z",
        "interval_end": "2026-12-02T14:10:00Z",
        "opened_at": "2026-12-02T14:05:00Z",
        "severity": 87.3,
        "direction": "low",
        "evidence": "point",
        "observed": 1100.0,
        "expected": 2125.0,
        "level": "combination",
        "contributors": [
            contributor("revenue", 0.78, 91.2, 100.0, 900.0, platform="web", marketplace="de"),
            contributor("revenue", 0.22, 60.0, 1000.0, 1225.0, platform="app", marketplace="fr"),
        ],
        "anomalous_series": [
            series("revenue", "combination", 91.2, 100.0, 900.0, platform="web", marketplace="de"),
            series("revenue", "combination", 60.0, 1000.0, 1225.0, platform="app", marketplace="fr"),
        ],
        "alerted": False,
        "feedback": None,
    }
    group.update(copy.deepcopy(changes))
    return group


def web_rollup_drop(**changes: Any) -> dict[str, Any]:
    """revenue low across every marketplace of web: the roll-up web/* is the highest anomalous level."""
    group = web_de_revenue_drop(
        group_id="revenue-low-20261202T1600Z",
        interval_start="2026-12-02T16:00:00Z",
        interval_end="2026-12-02T16:05:00Z",
        opened_at="2026-12-02T16:00:00Z",
        level="rollup",
        contributors=[
            contributor("revenue", 0.34, 55.0, 300.0, 400.0, platform="web", marketplace="de"),
            contributor("revenue", 0.33, 54.0, 300.0, 397.0, platform="web", marketplace="fr"),
            contributor("revenue", 0.33, 53.0, 300.0, 397.0, platform="web", marketplace="uk"),
        ],
        anomalous_series=[
            series("revenue", "rollup", 88.0, 900.0, 1194.0, platform="web", marketplace="*"),
            series("revenue", "total", 40.0, 3000.0, 3294.0, platform="*", marketplace="*"),
        ],
    )
    group.update(copy.deepcopy(changes))
    return group
