"""Held-out check of a streaming-detector change: the threshold tuned on one half of the files, applied to the other.

The full development set's best threshold flatters any change (it is tuned on the very files it is scored
on). This check splits the files once, the same way every time: the labelled files sorted by relative
path, alternate files to half A (0th, 2nd, ...) and half B (1st, 3rd, ...). For each direction it picks
the detector's best single threshold (its own decision rule) on one half and scores the other half at it.
A change is worth keeping when both held-out figures improve, not only the full set's.

    .venv/bin/python -m backtest.split_check --series PATH --labels labels.json [--param name=value ...]

``--param`` overrides a ``ModelParams`` constant for an experiment (the Lambda always runs the defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from backtest.nab_scoring import LabelledScores, RowValues, load_labels, row_values, score_corpus, window_rows
from backtest.runner import _best_rule, match_labels
from backtest.series_io import find_series_files, read_series
from backtest.streaming_replay import DEFAULT_SETTINGS, decide_on_scores, detect_series
from backtest.streaming_replay import ModelParams as _ModelParams


@dataclass(frozen=True)
class Scored:
    name: str
    scores: LabelledScores
    values: RowValues


def halves(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The fixed split: sorted by relative path, alternate files."""
    ordered = sorted(names)
    return ordered[0::2], ordered[1::2]


def _run(path: Path, name: str, overrides: dict[str, str]) -> tuple[str, list[float]]:
    series = read_series(path, name)
    params = _params(overrides)
    detection = detect_series(series.timestamps, series.values, params=params)
    return name, list(detection.scores)


def _params(overrides: dict[str, str]) -> _ModelParams:
    kinds = {f.name: f.type for f in dataclasses.fields(_ModelParams)}
    typed: dict[str, Any] = {key: int(v) if kinds[key] in ("int", int) else float(v) for key, v in overrides.items()}
    return _ModelParams(**typed)


def _score_at(files: Sequence[Scored], threshold: float, params: _ModelParams) -> float:
    flagged = [
        LabelledScores(
            f.name,
            np.asarray(decide_on_scores(f.scores.scores.tolist(), threshold, params), dtype=float),
            f.scores.windows,
        )
        for f in files
    ]
    return score_corpus(flagged, 0.5, [f.values for f in files]).normalised


def _best(files: Sequence[Scored], params: _ModelParams) -> tuple[float, float]:
    rules = [lambda s, t: decide_on_scores(s, t, params)] * len(files)
    best = _best_rule([f.scores for f in files], rules, [f.values for f in files])
    return best.threshold, best.normalised


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backtest.split_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=Path, default=Path("/work/shared/anomaly-benchmark/data"))
    parser.add_argument("--labels", type=Path, default=Path("/work/shared/anomaly-benchmark/labels.json"))
    parser.add_argument("--param", action="append", default=[], help="ModelParams override name=value")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.param)
    params = _params(overrides)  # fails early on a bad name
    labels = load_labels(args.labels)
    files = find_series_files(args.series)
    matched = match_labels([name for _, name in files], labels)
    jobs = [(path, name) for path, name in files if name in matched]
    with ProcessPoolExecutor(args.workers) as pool:
        results = dict(pool.map(_run, *zip(*jobs, strict=True), [overrides] * len(jobs)))
    stamps = {name: tuple(_utc(t) for t in read_series(path, name).timestamps) for path, name in jobs}
    scored = {}
    for name, scores in results.items():
        windows = window_rows(stamps[name], [(_utc(a), _utc(b)) for a, b in matched[name]])
        scored[name] = Scored(name, LabelledScores(name, np.asarray(scores), windows), row_values(len(scores), windows))
    own = DEFAULT_SETTINGS.anomaly_threshold / 100.0
    half_a, half_b = ([scored[n] for n in half] for half in halves(list(scored)))
    everything = [scored[n] for n in sorted(scored)]
    full_threshold, full_best = _best(everything, params)
    a_threshold, a_best = _best(half_a, params)
    b_threshold, b_best = _best(half_b, params)
    print(f"overrides: {overrides or 'none'}")
    print(
        f"full set ({len(everything)} files): own {_score_at(everything, own, params):.1f}, "
        f"best {full_best:.1f} at severity {100 * full_threshold:.1f}"
    )
    print(
        f"half A ({len(half_a)}): own {_score_at(half_a, own, params):.1f}, "
        f"best {a_best:.1f} at {100 * a_threshold:.1f}"
    )
    print(
        f"half B ({len(half_b)}): own {_score_at(half_b, own, params):.1f}, "
        f"best {b_best:.1f} at {100 * b_threshold:.1f}"
    )
    a_to_b, b_to_a = _score_at(half_b, a_threshold, params), _score_at(half_a, b_threshold, params)
    print(f"held out: tuned on A -> B {a_to_b:.1f}; tuned on B -> A {b_to_a:.1f}; mean {(a_to_b + b_to_a) / 2:.1f}")
    return 0


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
