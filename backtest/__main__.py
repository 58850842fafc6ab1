"""`python -m backtest` (what `make backtest` runs): replay series through a detector, score with labels.

    python -m backtest --detector streaming --series data/ --out out/backtest
    python -m backtest --detector streaming --series data/ --out out/backtest --labels labels.json
    python -m backtest --detector streaming --series data/ --out out/backtest --feedback feedback.json

PATH is one ``timestamp,value`` CSV with a header, or a folder searched recursively for ``*.csv``.
For each input file a CSV lands at the same relative path under DIR with the columns
``timestamp,value,score,is_anomaly`` (score in [0, 1]; is_anomaly: the detector's own decision) and the
detector's extra columns; with ``--feedback`` (``backtest.feedback_labels``) also ``feedback``. With
``--labels`` (NAB's ``labels.json`` shape) the results are scored with NAB's standard profile.
Exit status: 0 done, 1 some input could not be used, 2 bad usage or detector unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from backtest import detector_api
from backtest.feedback_labels import load_feedback
from backtest.nab_scoring import CorpusScore, load_labels
from backtest.runner import (
    BacktestRun,
    DetectorUnavailableError,
    Evaluation,
    check_detector,
    evaluate,
    format_delay,
    run_backtest,
)
from backtest.series_io import BacktestInputError, find_series_files

SUMMARY_FILE = "backtest_summary.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m backtest", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--detector", required=True, choices=sorted(detector_api.DETECTORS), help="which detector to replay"
    )
    parser.add_argument("--series", required=True, type=Path, help="a timestamp,value CSV or a folder of them")
    parser.add_argument("--out", required=True, type=Path, help="folder for the result CSVs (same relative paths)")
    parser.add_argument("--labels", type=Path, help="NAB labels.json: score the results with NAB's standard profile")
    parser.add_argument(
        "--feedback",
        type=Path,
        help='JSON list of {"series", "start", "end", "verdict"}: adds a feedback column to the result CSVs',
    )
    parser.add_argument("--workers", type=int, help="parallel processes (default: one per core)")
    parser.add_argument("--verbose", action="store_true", help="with --labels: one line per file")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_detector(args.detector)
        files = find_series_files(args.series)
        labels = load_labels(args.labels) if args.labels else None
        feedback = load_feedback(args.feedback) if args.feedback else None
    except DetectorUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BacktestInputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.out.resolve() == args.series.resolve() or args.series.resolve() in args.out.resolve().parents:
        print(
            f"error: --out {args.out} is inside --series {args.series}; results would be read as input", file=sys.stderr
        )
        return 2

    if feedback is not None:
        unknown = sorted(set(feedback) - {name for _, name in files})
        if unknown:
            print(f"error: --feedback names series not in --series: {', '.join(unknown)}", file=sys.stderr)
            return 1
    run = run_backtest(args.detector, files, args.out, args.workers, feedback)
    for failure in run.errors:
        print(f"error: {failure.message}", file=sys.stderr)
    print(
        f"{args.detector}: {len(run.outcomes)} file(s), {run.rows:,} rows in {run.wall_seconds:.1f} s "
        f"({run.workers} worker(s); detector {run.detector_seconds / max(run.rows, 1) * 1e6:.0f} µs CPU per row) "
        f"-> {args.out}"
    )
    evaluation = None
    if labels is not None and run.outcomes:
        try:
            evaluation = evaluate(run, labels)
        except BacktestInputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print_evaluation(evaluation, args.detector, verbose=args.verbose)
    _write_summary(args.out / SUMMARY_FILE, run, evaluation)
    return 1 if run.errors else 0


def print_evaluation(evaluation: Evaluation, detector: str, *, verbose: bool = False) -> None:
    own = evaluation.own
    print(f"NAB standard profile on {len(evaluation.scored)} labelled file(s), {own.windows} window(s):")
    for label, score in _rows(evaluation, detector):
        print(
            f"  {label:<46} {score.normalised:6.1f}   windows {score.detected_windows}/{score.windows}, "
            f"false positives {score.false_positives}, median delay "
            f"{format_delay(score.median_delay_seconds, score.median_delay_rows)}"
        )
    if evaluation.without_labels:
        print(f"  not scored (not in the labels): {', '.join(evaluation.without_labels)}")
    if evaluation.labels_without_file:
        print(f"  labelled but not in --series: {len(evaluation.labels_without_file)} file(s)")
    if verbose:
        print("  per file (own threshold): raw score, windows detected, false positives")
        for result in own.files:
            print(
                f"    {result.name:<60} {result.raw:+6.2f}  {result.detected_windows}/{result.windows}  "
                f"{result.false_positives}"
            )


def _rows(evaluation: Evaluation, detector: str) -> list[tuple[str, CorpusScore]]:
    scale = 100.0 if detector == "streaming" else 1.0
    unit = "severity" if detector == "streaming" else "score"

    def at(score: CorpusScore) -> str:
        return f"{unit} {score.threshold * scale:.4g}"

    rows = [("own flags (is_anomaly)", evaluation.own)]
    if evaluation.best_rule is not evaluation.best_scores:
        rows.append((f"best threshold, own rule ({at(evaluation.best_rule)})", evaluation.best_rule))
    rows.append((f"best threshold, score column ({at(evaluation.best_scores)})", evaluation.best_scores))
    return rows


def _write_summary(path: Path, run: BacktestRun, evaluation: Evaluation | None) -> None:
    def corpus(score: CorpusScore) -> dict[str, object]:
        return {
            "threshold": score.threshold,
            "normalised": round(score.normalised, 3),
            "raw": round(score.raw, 4),
            "windows": score.windows,
            "detected_windows": score.detected_windows,
            "false_positives": score.false_positives,
            "median_delay_rows": score.median_delay_rows,
            "median_delay_seconds": score.median_delay_seconds,
            "files": [
                {
                    "name": f.name,
                    "raw": round(f.raw, 4),
                    "windows": f.windows,
                    "detected": f.detected_windows,
                    "false_positives": f.false_positives,
                }
                for f in score.files
            ],
        }

    document: dict[str, object] = {
        "detector": run.detector,
        "files": len(run.outcomes),
        "rows": run.rows,
        "wall_seconds": round(run.wall_seconds, 3),
        "workers": run.workers,
        "detector_cpu_seconds": round(run.detector_seconds, 3),
        "errors": [failure.message for failure in run.errors],
    }
    if evaluation is not None:
        document["nab"] = {
            "own": corpus(evaluation.own),
            "best_rule": corpus(evaluation.best_rule),
            "best_scores": corpus(evaluation.best_scores),
            "not_in_labels": list(evaluation.without_labels),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
