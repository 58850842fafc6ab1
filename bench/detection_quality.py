"""Detection quality: both detectors' NAB standard scores on the shared development set, beside the published ones.

The data is the shared benchmark folder (29 labelled series from the Numenta Anomaly Benchmark, its labels,
and four published detectors' scores): ``--benchmark-data PATH``, else ``$ANOMALY_BENCHMARK_DIR``, else
``../shared/anomaly-benchmark`` next to the repository (or next to its parent, for a git worktree). Users
do not have it; the section is then skipped with a message. The data is never copied into the project.

- Bench check: the project's scorer (``backtest.nab_scoring``) reproduces the four figures in ``published/``.
- Each detector is replayed with the backtest (``backtest.runner``), exactly as ``make backtest`` does, and
  scored with its own decisions (``is_anomaly``) and at its best single threshold: with the detector's own
  decision rule (the streaming detector announces an open anomaly once), and on the score column alone
  (how NAB scores the published detectors' scores).
- Cost: the whole set's wall time with two workers, the detector's CPU time per series and interval, and
  the state size per series.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.reporting import BenchReport, Table, Target
from bench.runtime import Say

if TYPE_CHECKING:
    from backtest.runner import Evaluation

Labels = dict[str, list[tuple[datetime, datetime]]]

SECTION = "Detection quality (NAB standard profile, shared development set)"
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BENCHMARK_FOLDER = Path("shared") / "anomaly-benchmark"
# The shared README's table: standard-profile scores on exactly these 29 files, at each detector's best threshold.
PUBLISHED = {
    "numenta": ("numenta (HTM)", 74.0),
    "contextOSE": ("contextOSE", 71.9),
    "ARTime": ("ARTime", 71.2),
    "htmjava": ("htmjava", 70.2),
    "knncad": ("knncad", 61.7),
    "randomCutForest": ("randomCutForest (NAB's RCF)", 56.7),
    "random": ("random", 15.9),
    "null": ("null (detects nothing)", 0.0),
}
STREAMING_OWN_TARGET = PUBLISHED["numenta"][1]  # above every published detector
STREAMING_BEST_TARGET = 80.0
PIPELINE_TARGET = PUBLISHED["randomCutForest"][1]
DEV_SET_SECONDS_TARGET = 60.0  # whole set, streaming detector, two workers
QUICK_FILES = 6  # --quick: this many files (the bench still works; figures not comparable)


def find_benchmark(explicit: Path | None) -> Path | None:
    candidates = [explicit] if explicit else []
    if os.environ.get("ANOMALY_BENCHMARK_DIR"):
        candidates.append(Path(os.environ["ANOMALY_BENCHMARK_DIR"]))
    candidates += [REPOSITORY_ROOT.parent / BENCHMARK_FOLDER, REPOSITORY_ROOT.parent.parent / BENCHMARK_FOLDER]
    for candidate in candidates:
        if candidate is not None and (candidate / "labels.json").is_file() and (candidate / "data").is_dir():
            return candidate
    return None


def run(report: BenchReport, say: Say, *, quick: bool, benchmark: Path | None = None) -> None:
    folder = find_benchmark(benchmark)
    if folder is None:
        message = (
            "no benchmark data (labels.json and data/) at --benchmark-data, $ANOMALY_BENCHMARK_DIR or "
            "../shared/anomaly-benchmark; the detection-quality section needs the shared development set"
        )
        say(f"  skipped: {message}")
        report.skipped.append((SECTION, message))
        return
    from backtest.nab_scoring import load_labels

    labels = load_labels(folder / "labels.json")
    rows: list[tuple[str, ...]] = []
    rows += _published_rows(report, say, folder, labels)
    rows += _detector_rows(report, say, folder, labels, quick=quick)
    report.tables.append(
        Table(
            SECTION,
            f"NAB standard-profile scores on {folder.name} ({'a quick subset' if quick else '29 files, 50 windows'})",
            ("Detector", "Threshold", "NAB score", "Windows found", "False positives", "Target", "Verdict"),
            tuple(rows),
            notes=(
                "Published rows: the shared README's figures, each detector at its best single threshold; "
                "'recomputed' is this project's scorer on published/.",
                "Streaming 'own threshold' uses the detector's decisions (is_anomaly) at its configured severity; "
                "'best, own rule' varies that threshold through the same rule (an open anomaly is announced once); "
                "'best, score column' thresholds the score alone, as NAB scores the published detectors' scores.",
                "The pipeline trains on the whole series it scores, so its comparison with online detectors is "
                "not like for like.",
            ),
        )
    )


def _published_rows(report: BenchReport, say: Say, folder: Path, labels: Labels) -> list[tuple[str, ...]]:
    from backtest.nab_scoring import LabelledScores, best_threshold, window_rows

    rows: list[tuple[str, ...]] = []
    for key, (label, figure) in PUBLISHED.items():
        published = folder / "published" / key
        if not published.is_dir():
            rows.append((label, "best", f"{figure:.1f} (published)", "", "", "", ""))
            continue
        files = []
        for name, windows in sorted(labels.items()):
            timestamps, scores = _read_published(published / (name + ".gz"))
            files.append(LabelledScores(name, np.asarray(scores), window_rows(timestamps, windows), tuple(timestamps)))
        recomputed = best_threshold(files)
        say(f"  published {key}: recomputed {recomputed.normalised:.2f} (published {figure})")
        difference = abs(recomputed.normalised - figure)
        report.targets.append(
            Target(
                f"Scorer reproduces the published {label} figure ({figure:.1f})",
                0.05,
                difference,
                "points",
                note=f"recomputed {recomputed.normalised:.2f}",
            )
        )
        rows.append(
            (
                label,
                "best",
                f"{figure:.1f} (recomputed {recomputed.normalised:.1f})",
                f"{recomputed.detected_windows}/{recomputed.windows}",
                str(recomputed.false_positives),
                "",
                "",
            )
        )
    return rows


def _read_published(path: Path) -> tuple[list[datetime], list[float]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        reader = csv.reader(io.StringIO(handle.read()))
        next(reader)
        pairs = [(datetime.fromisoformat(row[0]), float(row[1])) for row in reader if row]
    return [t for t, _ in pairs], [s for _, s in pairs]


def _detector_rows(
    report: BenchReport,
    say: Say,
    folder: Path,
    labels: Labels,
    *,
    quick: bool,
) -> list[tuple[str, ...]]:
    from backtest.runner import DetectorUnavailableError, check_detector, evaluate, run_backtest
    from backtest.series_io import find_series_files

    files = find_series_files(folder / "data")
    if quick:
        files = files[:: max(1, len(files) // QUICK_FILES)][:QUICK_FILES]
    rows: list[tuple[str, ...]] = []
    for detector in ("streaming", "pipeline"):
        try:
            check_detector(detector)
        except DetectorUnavailableError as error:
            say(f"  {detector}: not available ({error})")
            report.skipped.append((f"{SECTION}: {detector} detector", str(error)))
            rows.append((f"{detector} (this project)", "", "not available", "", "", _target_text(detector), ""))
            continue
        say(f"  {detector}: replaying {len(files)} files with 2 workers")
        run = run_backtest(detector, files, out=None, workers=2)
        for failure in run.errors:
            say(f"  {detector}: {failure.message}")
        evaluation = evaluate(run, labels)
        per_row_us = run.detector_seconds / max(run.rows, 1) * 1e6
        say(
            f"  {detector}: own {evaluation.own.normalised:.1f}, "
            f"best (own rule) {evaluation.best_rule.normalised:.1f}, "
            f"best (score column) {evaluation.best_scores.normalised:.1f}; {run.wall_seconds:.1f} s wall, "
            f"{per_row_us:.0f} µs CPU per series and interval"
        )
        case = f"{detector}, {len(run.outcomes)} files, {run.rows:,} intervals"
        report.add(SECTION, case, "wall time, 2 workers", "s", [run.wall_seconds])
        report.add(SECTION, case, "detector CPU per series and interval", "µs", [per_row_us])
        if detector == "streaming":
            report.add(SECTION, case, "state per series (JSON)", "KB", [_streaming_state_bytes(folder) / 1000])
        configured = next((o.threshold for o in run.outcomes if o.threshold is not None), None)
        rows += _score_rows(report, detector, evaluation, configured, quick=quick)
        if not quick and detector == "streaming":
            report.targets.append(
                Target("Streaming backtest of the whole set, 2 workers", DEV_SET_SECONDS_TARGET, run.wall_seconds, "s")
            )
    return rows


def _score_rows(
    report: BenchReport, detector: str, evaluation: Evaluation, configured: float | None, *, quick: bool
) -> list[tuple[str, ...]]:
    scale, unit = (100.0, "severity") if detector == "streaming" else (1.0, "score")
    candidates = [("own threshold", evaluation.own)]
    if evaluation.best_rule is not evaluation.best_scores:
        candidates.append(("best, own rule", evaluation.best_rule))
    candidates.append(("best, score column", evaluation.best_scores))
    rows: list[tuple[str, ...]] = []
    for label, score in candidates:
        target, limit = _target_for(detector, label)
        verdict = ""
        if limit is not None and not quick:
            met = score.normalised > limit
            margin = score.normalised - limit
            digits = 1 if abs(margin) >= 0.05 else 3
            verdict = f"met by {margin:.{digits}f}" if met else f"missed by {-margin:.{digits}f}"
            report.targets.append(
                Target(
                    f"{detector.capitalize()} NAB score, {label}",
                    limit,
                    score.normalised,
                    "points",
                    higher_is_better=True,
                )
            )
        if label == "own threshold":
            # The own decisions are scored as 0/1 flags; show the threshold the detector decided at.
            threshold = f"{unit} {configured * scale:.4g}" if configured is not None else "own per-run cut-off"
        else:
            threshold = f"{unit} {score.threshold * scale:.4g}"
        rows.append(
            (
                f"{detector} (this project), {label}",
                threshold,
                f"{score.normalised:.1f}"
                if abs(score.normalised - (limit or -1)) >= 0.05
                else f"{score.normalised:.3f}",
                f"{score.detected_windows}/{score.windows}",
                str(score.false_positives),
                target,
                verdict if not quick else "quick subset: not compared",
            )
        )
    return rows


def _target_for(detector: str, label: str) -> tuple[str, float | None]:
    if detector == "streaming" and label == "own threshold":
        return f"> {STREAMING_OWN_TARGET:.1f}", STREAMING_OWN_TARGET
    if detector == "streaming" and label == "best, own rule":
        return f"> {STREAMING_BEST_TARGET:.1f}", STREAMING_BEST_TARGET
    if detector == "pipeline" and label.startswith("best"):
        return f"> {PIPELINE_TARGET:.1f}", PIPELINE_TARGET
    return "", None


def _target_text(detector: str) -> str:
    if detector == "pipeline":
        return f"> {PIPELINE_TARGET:.1f}"
    return f"> {STREAMING_OWN_TARGET:.1f} own, > {STREAMING_BEST_TARGET:.1f} best"


def _streaming_state_bytes(folder: Path) -> float:
    """The state document of one series after the longest file of the set (its JSON in the detector state)."""
    lambda_folder = str(REPOSITORY_ROOT / "lambda")
    if lambda_folder not in sys.path:
        sys.path.insert(0, lambda_folder)
    from anomaly_detector.series_model import update

    from backtest.series_io import find_series_files, read_series

    longest = max(find_series_files(folder / "data"), key=lambda item: item[0].stat().st_size)
    series = read_series(*longest)
    state = None
    for moment, value in zip(series.timestamps, series.values, strict=True):
        _, state = update(state, moment, value, 50.0)
    assert state is not None
    return float(len(json.dumps(state.to_dict(), separators=(",", ":"))))
