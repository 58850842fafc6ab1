"""`python3 evaluation-job.zip --scores DIR --output DIR --execution-arn ARN` (the processing job's entrypoint)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from evaluation_job.report import build_report
from evaluation_job.scores import ScoresError, read_scored_windows
from pipeline_evaluation import evaluate_windows

REPORT_FILE_NAME = "evaluation.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluation_job")
    parser.add_argument("--scores", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--execution-arn", default="")
    arguments = parser.parse_args(argv)
    try:
        windows = read_scored_windows(arguments.scores)
    except ScoresError as error:
        # Processing jobs report the last lines of stderr as the failure reason.
        print(f"evaluation failed: {error}", file=sys.stderr)
        return 1
    evaluation = evaluate_windows(windows.window_starts, windows.observed, windows.expected, windows.scores)
    report = build_report(windows, evaluation, arguments.execution_arn)
    arguments.output.mkdir(parents=True, exist_ok=True)
    (arguments.output / REPORT_FILE_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"evaluated {report['rows_scored']} windows: {evaluation.cutoff.describe()}; "
        f"{report['anomaly_event_count']} event(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
