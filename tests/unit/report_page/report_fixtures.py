"""A small out folder as a local run leaves it: interval CSVs, groups.jsonl, a feedback label, pipeline CSVs."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app_config.settings import MeasureSpec, StreamingConfig

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
INTERVALS = 24
CONFIG = StreamingConfig(
    measures=(MeasureSpec("views", "sum"), MeasureSpec("revenue", "sum"), MeasureSpec("order_id", "count")),
    dimensions=("platform", "marketplace"),
    frequency_minutes=5,
)
HOSTILE_MARKETPLACE = '<script>alert("x")</script>&'


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_interval(
    streaming: Path, start: datetime, header: Sequence[str], rows: Sequence[Sequence[str]], *, batch: int = 1
) -> Path:
    folder = (
        streaming
        / "metrics"
        / "intervals"
        / f"intvl_date={start:%Y-%m-%d}"
        / f"intvl_hhmm={start:%H%M}"
        / f"batch_id={batch:012d}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "part-00000-abc.c000.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def group_record(
    group_id: str,
    measure: str,
    direction: str,
    start: datetime,
    *,
    status: str,
    severity: float,
    contributors: Sequence[tuple[Mapping[str, str], float, float]],
    feedback: str | None = None,
    opened_at: datetime | None = None,
    evidence: str | None = None,
) -> dict[str, Any]:
    items = []
    for dimensions, observed, expected in contributors:
        key = "|".join([measure, *(f"{name}={value}" for name, value in dimensions.items())])
        items.append(
            {
                "series": key,
                "dimensions": dict(dimensions),
                "observed": observed,
                "expected": expected,
                "share": 0.0,
                "severity": severity,
            }
        )
    return {
        "group_id": group_id,
        "status": status,
        "measure": measure,
        "aggregation": "sum",
        "interval_start": iso(start),
        "interval_end": iso(start + timedelta(minutes=5)),
        "opened_at": iso(opened_at or start),
        "severity": severity,
        "direction": direction,
        "observed": sum(observed for _, observed, _ in contributors),
        "expected": sum(expected for _, _, expected in contributors),
        "level": "combination",
        "contributors": items,
        "anomalous_series": [],
        "alerted": True,
        "feedback": feedback,
        **({"evidence": evidence} if evidence else {}),  # records written before groups carried it lack it
    }


def write_groups(streaming: Path, records: Sequence[Mapping[str, Any]]) -> None:
    for record in records:
        start = datetime.fromisoformat(str(record["interval_start"]).replace("Z", "+00:00"))
        folder = streaming / "metrics" / "anomalies" / f"intvl_date={start:%Y-%m-%d}" / f"intvl_hhmm={start:%H%M}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "groups.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


REVENUE_LOW_ID = "revenue-low-20261202T1300Z"
VIEWS_HIGH_ID = "views-high-20261202T1330Z"


def build_out_folder(out: Path) -> Path:
    """24 intervals from 12:00 with views/revenue/order_id; a two-interval revenue drop (78 % web/de, with a
    hostile dimension value as the other contributor) and a views spike labelled "not an anomaly"."""
    streaming = out / "streaming"
    # Columns in an order other than the contract's, so a reader that assumes positions fails.
    header = ["revenue", "platform", "event_time", "order_id", "marketplace", "views"]
    for index in range(INTERVALS):
        start = START + timedelta(minutes=5 * index)
        stamp = f"{start:%Y-%m-%d %H:%M:%S}"
        rows = [
            ["10.5", "web", stamp, "o1", "de", "3"],
            ["", "ios", stamp, "o2", HOSTILE_MARKETPLACE, "2"],  # blank revenue: skipped, still counted
            ["oops", "web", stamp, "", "us", str(index)],  # non-numeric revenue, no order id
        ]
        write_interval(streaming, start, header, rows)
    # A second batch's file for the first interval adds to it.
    write_interval(streaming, START, header, [["1.5", "web", f"{START:%Y-%m-%d %H:%M:%S}", "o9", "de", "10"]], batch=2)
    first = START + timedelta(hours=1)
    write_groups(
        streaming,
        [
            group_record(
                REVENUE_LOW_ID,
                "revenue",
                "low",
                first,
                status="new",
                severity=81.0,
                evidence="point",
                contributors=[
                    ({"platform": "web", "marketplace": "de"}, 20.0, 98.0),
                    ({"platform": "ios", "marketplace": HOSTILE_MARKETPLACE}, 8.0, 30.0),
                    ({"platform": "web", "marketplace": "us"}, 50.0, 40.0),
                ],
            ),
            group_record(
                REVENUE_LOW_ID,
                "revenue",
                "low",
                first + timedelta(minutes=5),
                status="ongoing",
                severity=87.3,
                opened_at=first,
                evidence="shift",
                contributors=[
                    ({"platform": "web", "marketplace": "de"}, 10.0, 98.0),
                    ({"platform": "ios", "marketplace": HOSTILE_MARKETPLACE}, 8.0, 30.0),
                ],
            ),
            group_record(
                VIEWS_HIGH_ID,
                "views",
                "high",
                START + timedelta(minutes=90),
                status="new",
                severity=72.0,
                contributors=[({"platform": "web", "marketplace": "us"}, 90.0, 20.0)],
            ),
        ],
    )
    feedback = streaming / "metrics" / "feedback"
    feedback.mkdir(parents=True)
    (feedback / f"{VIEWS_HIGH_ID}.json").write_text(
        json.dumps({"group_id": VIEWS_HIGH_ID, "label": "not_anomaly"}), encoding="utf-8"
    )
    pipeline = out / "pipeline"
    pipeline.mkdir(parents=True)
    with (pipeline / "scored_windows.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["window_start", "passengers", "score", "is_anomaly", "expected", "event_id"])
        for index in range(48):
            moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=30 * index)
            writer.writerow([f"{moment:%Y-%m-%d %H:%M:%S}", 100 + index, "0.5", 0, "101.0", ""])
    with (pipeline / "anomaly_events.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "event_id",
                "start",
                "end",
                "windows",
                "peak_window",
                "peak_score",
                "observed_passengers",
                "expected_passengers",
                "change_percent",
                "peak_observed",
                "peak_expected",
            ]
        )
        writer.writerow(
            [
                1,
                "2026-01-01 10:00:00",
                "2026-01-01 11:00:00",
                2,
                "2026-01-01 10:30:00",
                "3.2",
                812,
                420,
                "+93",
                450,
                210,
            ]
        )
    return out
