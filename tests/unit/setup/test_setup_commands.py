"""The setup a new user meets first: the Makefile's checks and targets, and cdk.json's app command."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")


def run_make(*arguments: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(
        [str(MAKE), "--no-print-directory", "-C", str(REPO_ROOT), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def fake_node(folder: Path, version: str) -> str:
    """A PATH holding only a `node` that reports `version` (plus the tools the recipe itself uses)."""
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / "node"
    node.write_text(f"#!/bin/sh\necho {version.split('.')[0]}\n")
    node.chmod(node.stat().st_mode | stat.S_IEXEC)
    return f"{folder}:/usr/bin:/bin"


def test_make_test_checks_node_with_install_instructions(tmp_path: Path) -> None:
    # Given a machine without Node.js
    (tmp_path / "empty").mkdir()
    result = run_make("check-node", path=str(tmp_path / "empty"))
    # Then the check stops, saying what is needed and how to install it
    assert result.returncode != 0
    assert "Node.js 20 or newer is needed by the CDK" in result.stdout
    assert "Install Node.js 22 or 24 (LTS)" in result.stdout


@pytest.mark.parametrize(
    ("version", "ok", "says"),
    [
        ("18.20.4", False, "Node.js 18 is too old for the CDK"),
        ("20.20.2", True, "note: Node.js 20 is past its end of life"),
        ("22.11.0", True, ""),
        ("24.1.0", True, ""),
    ],
)
def test_node_versions(tmp_path: Path, version: str, ok: bool, says: str) -> None:
    result = run_make("check-node", path=fake_node(tmp_path / "bin", version))
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    assert result.stdout.strip() == says or (says and says in result.stdout)


def test_make_test_runs_the_node_check_before_pytest() -> None:
    plan = run_make("-n", "test").stdout
    assert plan.index("Node.js 20 or newer is needed") < plan.index("-m pytest")


def test_make_synth_passes_only_options_cdk_synth_has() -> None:
    plan = run_make("-n", "synth", "ENV=prod").stdout.splitlines()
    synth = next(line for line in plan if " synth " in line)
    assert "--all" not in synth  # `cdk synth` has no --all: it synthesizes every stack anyway
    assert "-c env=prod" in synth and "--quiet" in synth
    assert '--app "' in synth and 'app.py"' in synth


def test_make_deploy_takes_stack_selectors() -> None:
    assert " deploy --all -c env=dev" in run_make("-n", "deploy").stdout
    assert " deploy Storage DataPrep -c env=dev" in run_make("-n", "deploy", "STACKS=Storage DataPrep").stdout


def test_make_unit_runs_the_fast_tests() -> None:
    plan = run_make("-n", "unit").stdout
    assert '-m pytest -m "not spark and not e2e and not slow"' in plan


def test_cdk_json_runs_the_app_with_the_active_python() -> None:
    # A venv path (.venv/bin/python) works only after `make` and never on Windows
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"] == "python app.py"


def test_app_without_its_packages_says_how_to_get_them() -> None:
    # Given a Python without the CDK packages (-S: standard library only)
    result = subprocess.run(
        [sys.executable, "-S", "app.py"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    # Then one message says what to do instead of a traceback
    assert result.returncode == 1
    assert result.stderr.startswith("app.py needs the packages in requirements.txt (No module named")
    assert "make synth" in result.stderr and "Traceback" not in result.stderr


def test_importing_the_app_prints_no_jsii_end_of_life_banner() -> None:
    # Given an environment that does not silence jsii itself (app.py must, before aws_cdk starts Node)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    result = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "end-of-life" not in result.stderr and "!!!!" not in result.stderr
