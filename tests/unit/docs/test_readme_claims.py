"""The README's claims hold: the options it shows exist, the make targets exist, its troubleshooting messages are
the ones the code prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from glue_scripts.taxi_prep import INPUT_OPTION_NAMES
from local_mode.main import parse_args
from ml_pipeline.cli import _parser as operator_parser

REPO_ROOT = Path(__file__).resolve().parents[3]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
# Arguments the prep Glue job reads (glue_scripts/taxi_prep.py main()).
GLUE_PREP_ARGUMENTS = {"--input_uri", "--output_uri", *(f"--{name}" for name in INPUT_OPTION_NAMES)}


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def local_mode_options(capsys: pytest.CaptureFixture[str]) -> set[str]:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    return set(FLAG.findall(capsys.readouterr().out))


def operator_options() -> set[str]:
    parser = operator_parser()
    options = {option for action in parser._actions for option in action.option_strings}
    for action in parser._actions:
        for subparser in getattr(action, "choices", None) or {}:
            sub = action.choices[subparser]  # type: ignore[index]
            options |= {option for sub_action in sub._actions for option in sub_action.option_strings}
    return options


def test_every_local_mode_option_the_readme_shows_exists(capsys: pytest.CaptureFixture[str]) -> None:
    options = local_mode_options(capsys)
    running_locally = section("Running locally")
    # Other tools' commands in the section (aws s3 ...) have options of their own.
    own_lines = [line for line in running_locally.splitlines() if "aws s3" not in line]
    shown = {flag for line in own_lines for flag in FLAG.findall(line) if "_" not in flag}
    shown |= {
        flag
        for line in README.splitlines()
        if "make local" in line or "local_mode" in line
        for flag in FLAG.findall(line)
    }
    assert shown, "the README shows no local-mode option"
    assert sorted(shown - options - {"--help"}) == []


def test_every_glue_argument_the_readme_names_is_read_by_the_prep_job() -> None:
    named = {flag for flag in FLAG.findall(section("Running locally")) if "_" in flag}
    assert named and sorted(named - GLUE_PREP_ARGUMENTS) == []


def test_every_operator_cli_option_the_readme_shows_exists() -> None:
    shown = {flag for line in README.splitlines() if "ml_pipeline" in line for flag in FLAG.findall(line)}
    assert "--region" in shown
    assert sorted(shown - operator_options()) == []


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README)) | set(
        re.findall(r"^make ([a-z][a-z-]*)", README, re.MULTILINE)
    )
    assert {"local", "test", "unit", "synth", "deploy", "destroy", "install"} <= named
    assert sorted(named - targets) == []


@pytest.mark.parametrize(
    ("message", "source"),
    [
        ("Node.js 20 or newer is needed by the CDK", "Makefile"),
        ("Java 17 is needed for local Spark", "Makefile"),
        ("no trip files", "local_mode/trip_input.py"),
        ("not a trip file", "local_mode/trip_input.py"),
        ("holds both CSV (", "local_mode/trip_input.py"),
        ("is not empty and holds no earlier local-mode output", "local_mode/output_folder.py"),
        ("half-hour windows, over the cap", "glue_scripts/taxi_prep.py"),
        ("valid pickups fall outside the analysis range", "glue_scripts/taxi_prep.py"),
        ("no AWS credentials found", "ml_pipeline/cli.py"),
        ("does not exist in ", "ml_pipeline/cli.py"),
    ],
)
def test_the_troubleshooting_messages_are_the_ones_the_code_prints(message: str, source: str) -> None:
    assert message in section("Troubleshooting")
    assert message in (REPO_ROOT / source).read_text(encoding="utf-8")


def test_the_readme_no_longer_says_node_is_for_deploying_only() -> None:
    assert "For deploying only: Node.js" not in README
    assert "`make test` (the infrastructure tests), `make synth` and `make deploy` need it" in README
