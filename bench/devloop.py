"""Developer loop: how long the everyday commands take, each in a fresh process as a developer runs them.

- `cdk synth` of every stack: `app.py` with cdk.json's context (bundling skipped, as the tests do) and a
  temporary output folder, the way tests/unit/config/test_app_config.py runs it.
- The test suite (`pytest -q -x`): minutes long, so only with `--include-suite`.
- The default local run (`python -m local_mode`), with only `--out` changed so that it does not overwrite
  the `out/` folder someone may be looking at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data import DATA_ROOT
from bench.reporting import BenchReport
from bench.runtime import Say

SECTION = "Developer loop (fresh processes)"
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 1800


def _without_aws_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CDK_DEFAULT"))}


def _run(command: list[str], environment: dict[str, str], what: str) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout)[-1500:]
        raise RuntimeError(f"{what} failed (exit {completed.returncode}): {output}")
    return seconds


def synth_seconds() -> tuple[float, int]:
    context = json.loads((REPOSITORY_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    context |= {"aws:cdk:bundling-stacks": []}
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        environment = _without_aws_settings() | {"CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": outdir}
        seconds = _run([sys.executable, "app.py"], environment, "cdk synth (app.py)")
        stacks = len(list(Path(outdir).glob("*.template.json")))
    return seconds, stacks


def run(report: BenchReport, say: Say, *, include_suite: bool, include_local_run: bool, synth_runs: int = 2) -> None:
    synth: list[float] = []
    stacks = 0
    for run_number in range(1, synth_runs + 1):
        seconds, stacks = synth_seconds()
        synth.append(seconds)
        say(f"  cdk synth run {run_number}/{synth_runs}: {seconds:.1f} s ({stacks} stacks)")
    report.add(SECTION, "cdk synth, all stacks (dev)", "wall time", "s", synth, note=f"{stacks} stack templates")

    if include_suite:
        say("  test suite: pytest -q -x (takes minutes)")
        seconds = _run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], dict(os.environ), "the test suite"
        )
        report.add(SECTION, "test suite (pytest -q -x)", "wall time", "s", [seconds], note="one run")
        say(f"  test suite: {seconds:.0f} s")
    else:
        report.skipped.append(
            (
                "Developer loop: test suite",
                "takes minutes, which would push the bench past 10 minutes; run with --include-suite",
            )
        )

    if include_local_run:
        out = DATA_ROOT / "local_run"
        say("  default local run: python -m local_mode (takes a minute or two)")
        seconds = _run(
            [sys.executable, "-m", "local_mode", "--out", str(out), "--quiet"], dict(os.environ), "python -m local_mode"
        )
        report.add(
            SECTION,
            "default local run (python -m local_mode)",
            "wall time",
            "s",
            [seconds],
            note="one run; defaults except --out (and --quiet); includes its own Spark start",
        )
        say(f"  default local run: {seconds:.0f} s")
    else:
        report.skipped.append(("Developer loop: default local run", "--quick"))
