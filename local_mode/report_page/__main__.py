"""`python -m local_mode.report_page --out DIR [--env dev]`: rebuild DIR/report.html from DIR alone."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app_config.settings import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode.report_page", description="Rebuild the local run's report.html from its out folder."
    )
    parser.add_argument("--out", type=Path, default=Path("out"), help="the local run's out folder (default: out)")
    parser.add_argument(
        "--env",
        default="dev",
        help="cdk.json environment whose metric set (measures, dimensions) to show (default dev)",
    )
    args = parser.parse_args(argv)
    if not args.out.is_dir():
        print(f"error: --out {args.out} is not a folder: run `make local` first, or pass its --out", file=sys.stderr)
        return 2
    from local_mode.main import load_config
    from local_mode.report_page import build_report_page

    try:
        config = load_config(args.env)
    except ConfigError as error:
        print(f"error: --env {args.env}: {error}", file=sys.stderr)
        return 2
    print(build_report_page(args.out, config.streaming))
    return 0


if __name__ == "__main__":
    sys.exit(main())
