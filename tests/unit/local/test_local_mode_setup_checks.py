"""What the local mode checks before it starts: --input, --out, --env, the prep options; and how it reports."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from local_mode.local_compute import _is_console_noise
from local_mode.main import EXIT_SETUP, LocalModeArgs, main, parse_args, run
from local_mode.output_folder import MARKER, OutputFolderError, prepare_output_folder
from local_mode.progress import Progress
from local_mode.trip_input import Staging, TripInputError, check_trip_input, stage_trip_files

REPO_ROOT = Path(__file__).resolve().parents[3]


def write(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- --input ---------------------------------------------------------------------------------------------


def test_files_with_the_same_name_in_different_folders_are_all_staged(tmp_path: Path) -> None:
    # Given two months stored as 01/data.parquet and 02/data.parquet
    user = tmp_path / "tlc"
    write(user / "01" / "data.parquet", b"jan")
    write(user / "02" / "data.parquet", b"feb")

    # When they are staged
    staged, staging = stage_trip_files(check_trip_input(user), tmp_path / "raw", "s3://raw/taxi/")

    # Then both arrive, each at its relative path, and messages about them name the user's files
    assert sorted(p.relative_to(tmp_path / "raw").as_posix() for p in staged) == ["01/data.parquet", "02/data.parquet"]
    assert (tmp_path / "raw" / "02" / "data.parquet").read_bytes() == b"feb"
    assert (
        staging.as_user_text("s3://raw/taxi/02/data.parquet has no column") == f"{user}/02/data.parquet has no column"
    )
    assert staging.as_user_text("no trip data under s3://raw/taxi/") == f"no trip data under {user}/"


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, r"--input {root}/missing: no such file or folder"),
        (
            {"x.gz": b"\x1f\x8b"},
            r"--input {root}/x\.gz: not a trip file; the prep job reads \.csv, \.csv\.gz or \.parquet",
        ),
        (
            {"dir/notes.txt": b"n", "dir/x.gz": b"z"},
            r"--input {root}/dir: no trip files .*; found only notes\.txt, x\.gz",
        ),
        ({"dir/_SUCCESS": b""}, r"--input {root}/dir: no trip files .* \(the folder is empty\)"),
        ({"dir/a.csv": b"h", "dir/b.parquet": b"p"}, r"--input {root}/dir: holds both CSV \(a\.csv\) and Parquet"),
        ({"dir/yellow.parquet": b""}, r"--input {root}/dir \(yellow\.parquet\): the file is empty"),
    ],
    ids=["missing", "not-a-trip-file", "only-other-files", "only-hidden", "two-formats", "empty-file"],
)
def test_unusable_input_fails_naming_the_users_path(tmp_path: Path, layout: dict[str, bytes], message: str) -> None:
    for relative, content in layout.items():
        write(tmp_path / relative, content)
    target = tmp_path / ("missing" if not layout else next(iter(layout)).split("/")[0])
    with pytest.raises(TripInputError, match=message.format(root=tmp_path)):
        check_trip_input(target)


def test_other_files_are_listed_as_ignored_and_hidden_ones_skipped(tmp_path: Path) -> None:
    write(tmp_path / "in" / "yellow_tripdata_2024-01.parquet")
    write(tmp_path / "in" / "x.gz")
    write(tmp_path / "in" / "_SUCCESS")
    write(tmp_path / "in" / ".hidden" / "y.parquet")
    found = check_trip_input(tmp_path / "in")
    assert [p.name for p in found.files] == ["yellow_tripdata_2024-01.parquet"]
    assert [p.name for p in found.ignored] == ["x.gz"]


def test_a_bad_input_fails_before_spark_starts_or_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an input path that does not exist
    args = LocalModeArgs(out=tmp_path / "out", input_path=tmp_path / "nope", quiet=True)

    # When the local mode runs (it would start Spark next)
    result = run(args)

    # Then it stops with one line naming the path, and wrote nothing
    assert result.exit_code == EXIT_SETUP
    assert capsys.readouterr().err == f"error: --input {tmp_path}/nope: no such file or folder\n"
    assert not (tmp_path / "out").exists()


# --- --out -----------------------------------------------------------------------------------------------


def test_a_non_empty_folder_that_is_not_an_earlier_output_is_refused_untouched(tmp_path: Path) -> None:
    # Given a user's folder with their own logs/ and s3/
    write(tmp_path / "mine" / "logs" / "today.log", b"keep me")
    write(tmp_path / "mine" / "s3" / "bucket.txt", b"keep me too")

    # When / Then it is refused, and nothing was deleted
    with pytest.raises(OutputFolderError, match=r"is not empty and holds no earlier local-mode output"):
        prepare_output_folder(tmp_path / "mine")
    assert (tmp_path / "mine" / "logs" / "today.log").read_bytes() == b"keep me"
    assert (tmp_path / "mine" / "s3" / "bucket.txt").exists()


def test_an_earlier_output_is_cleared_of_its_own_entries_only(tmp_path: Path) -> None:
    # Given a folder a run wrote (marked), with a user file added next to the outputs since
    out = tmp_path / "out"
    prepare_output_folder(out)
    write(out / "s3" / "old.csv")
    write(out / "summary.txt")
    write(out / "my-notes.md", b"notes")

    # When the next run prepares it
    prepare_output_folder(out)

    # Then the run's entries are gone and the user's file is still there
    assert not (out / "s3").exists() and not (out / "summary.txt").exists()
    assert (out / "my-notes.md").read_bytes() == b"notes"
    assert (out / MARKER).is_file()


def test_feedback_labels_given_on_an_earlier_run_are_kept_for_the_next(tmp_path: Path) -> None:
    # Given a run's output with a label from `streaming_cli feedback ... --out` beside the run's own files
    out = tmp_path / "out"
    prepare_output_folder(out)
    write(out / "streaming" / "feedback" / "revenue-low-20261124T0600Z.json", b'{"verdict": "not_anomaly"}')
    write(out / "streaming" / "anomalies" / "groups.jsonl")

    # When the next run prepares the folder
    prepare_output_folder(out)

    # Then the run's files are gone, and the label is where the detector reads it
    assert not (out / "streaming" / "anomalies").exists()
    label = out / "streaming" / "feedback" / "revenue-low-20261124T0600Z.json"
    assert label.read_bytes() == b'{"verdict": "not_anomaly"}'
    assert not (out / ".kept-while-clearing").exists()


def test_labels_set_aside_by_a_run_interrupted_while_clearing_are_put_back(tmp_path: Path) -> None:
    # Given a run killed after it set the labels aside and removed streaming/
    out = tmp_path / "out"
    prepare_output_folder(out)
    write(out / ".kept-while-clearing" / "streaming" / "feedback" / "views-high-20261124T1900Z.json", b"{}")

    # When the next run prepares the folder, then the label is back and nothing is left aside
    prepare_output_folder(out)
    assert (out / "streaming" / "feedback" / "views-high-20261124T1900Z.json").read_bytes() == b"{}"
    assert not (out / ".kept-while-clearing").exists()


def test_an_output_from_before_the_marker_is_recognised_by_its_summary(tmp_path: Path) -> None:
    write(tmp_path / "out" / "summary.txt", b"\n=====\nLOCAL MODE SUMMARY\n=====\n")
    write(tmp_path / "out" / "logs" / "fargate-task-1.log")
    prepare_output_folder(tmp_path / "out")
    assert not (tmp_path / "out" / "logs").exists()


def test_an_empty_or_new_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    prepare_output_folder(tmp_path / "empty")
    prepare_output_folder(tmp_path / "new" / "nested")
    assert (tmp_path / "empty" / MARKER).is_file() and (tmp_path / "new" / "nested" / MARKER).is_file()


# --- --env, prep options, --quiet, --help ----------------------------------------------------------------


def test_an_unknown_environment_is_one_line_naming_the_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["--env", "staging", "--out", str(tmp_path / "out")])
    assert exit_code == EXIT_SETUP
    assert (
        capsys.readouterr().err
        == "error: --env staging: unknown environment 'staging'; valid environments: dev, prod\n"
    )


def test_a_bad_analysis_range_is_refused_in_the_local_modes_own_option_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--out", str(tmp_path / "out"), "--analysis-start", "2024-02-01", "--analysis-end", "2024-01-01"]
    assert main(argv) == EXIT_SETUP
    assert capsys.readouterr().err.startswith(
        "error: --analysis-start 2024-02-01 is not before --analysis-end 2024-01-01"
    )


def test_analysis_options_become_the_prep_jobs_arguments() -> None:
    args = parse_args(["--analysis-start", "2024-01-01", "--analysis-end", "2024-02-01", "--max-windows", "2000"])
    assert args.prep_arguments() == {
        "--analysis_start": "2024-01-01",
        "--analysis_end": "2024-02-01",
        "--max_windows": "2000",
    }
    assert parse_args([]).prep_arguments() == {}


def test_quiet_prints_the_summary_and_errors_but_no_progress() -> None:
    stream = io.StringIO()
    progress = Progress(stream, quiet=True)
    progress.say("spark", "starting")
    progress.plain("a progress block")
    progress.always("LOCAL MODE SUMMARY")
    assert stream.getvalue() == "LOCAL MODE SUMMARY\n"


def test_help_works_with_the_standard_library_alone() -> None:
    # Given a Python without this project's packages (-S: no site-packages at all)
    result = subprocess.run(
        [sys.executable, "-S", "-m", "local_mode", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    # Then --help still prints the options
    assert result.returncode == 0, result.stderr
    assert "usage: python -m local_mode" in result.stdout
    assert "--analysis-start" in result.stdout


def test_a_run_without_the_packages_says_how_to_get_them(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-S", "-m", "local_mode", "--only", "streaming", "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == EXIT_SETUP
    assert result.stderr.startswith("error: the local mode needs this project's Python packages (No module named")
    assert "make local" in result.stderr
    assert "Traceback" not in result.stderr


# --- console noise ---------------------------------------------------------------------------------------


def test_botocore_info_lines_stay_out_of_the_console() -> None:
    assert _is_console_noise(
        "2026-01-01 10:00:00,123 INFO botocore.credentials Found credentials in environment variables."
    )
    assert not _is_console_noise("2026-01-01 10:00:00,123 INFO fargate_task.runner Started Glue job run jr_1")
    assert not _is_console_noise("2026-01-01 10:00:00,123 ERROR botocore.endpoint Could not connect")


def test_staging_without_input_changes_nothing() -> None:
    assert Staging().as_user_text("s3://taxi-raw-local/taxi/x.csv") == "s3://taxi-raw-local/taxi/x.csv"
