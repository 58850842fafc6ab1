"""The user's `--input`: checked before Spark starts, staged into the local raw bucket by relative path.

The checks are the prep job's own rules (glue_scripts/taxi_prep.py) applied early, so a wrong path fails in
a second with a message naming the user's path instead of after Spark started, naming a staging location:

* the path exists and is a trip file (`.csv`, `.csv.gz`, `.parquet`) or a folder holding some;
* one format per folder (the job refuses CSV and Parquet together);
* no trip file is empty;
* files and folders whose name starts with `_` or `.` are skipped, as Spark and the job skip them; any other
  file that is not a trip file (`x.gz`, `notes.txt`) is listed as ignored, never dropped silently.

Staging keeps each file's path relative to `--input`, so `01/data.parquet` and `02/data.parquet` both
arrive. :class:`Staging` maps staged locations back to the user's files for messages.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
TRIP_FILE_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
ACCEPTED = ".csv, .csv.gz or .parquet"


class TripInputError(ValueError):
    """`--input` cannot be used; the message names the user's path and says what to do."""


@dataclass(frozen=True)
class TripInput:
    """The trip files under the user's path (relative paths kept), and what was skipped."""

    root: Path
    files: tuple[Path, ...]
    input_format: str
    ignored: tuple[Path, ...] = ()

    def relative(self, trip_file: Path) -> Path:
        return Path(trip_file.name) if self.root.is_file() else trip_file.relative_to(self.root)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.parts)


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def check_trip_input(path: Path) -> TripInput:
    """Validate `--input` the way the prep job will read it; raises TripInputError naming `path`."""
    if not path.exists():
        raise TripInputError(f"--input {path}: no such file or folder")
    if path.is_file():
        input_format = _format_of(path)
        if input_format is None:
            raise TripInputError(
                f"--input {path}: not a trip file; the prep job reads {ACCEPTED} (TLC yellow-taxi trip records)"
            )
        _require_not_empty(path, path)
        return TripInput(root=path, files=(path,), input_format=input_format)
    files: list[Path] = []
    ignored: list[Path] = []
    for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = candidate.relative_to(path)
        if _is_hidden(relative):
            continue
        (files if _format_of(candidate) else ignored).append(candidate)
    if not files:
        found = f"; found only {_names(ignored, path)}" if ignored else " (the folder is empty)"
        raise TripInputError(f"--input {path}: no trip files ({ACCEPTED}){found}")
    formats = {_format_of(trip_file) for trip_file in files}
    if len(formats) > 1:
        csv_example = next(f for f in files if _format_of(f) == "csv")
        parquet_example = next(f for f in files if _format_of(f) == "parquet")
        raise TripInputError(
            f"--input {path}: holds both CSV ({csv_example.relative_to(path)}) and Parquet "
            f"({parquet_example.relative_to(path)}) files; the prep job reads one format per folder, "
            "so point --input at a folder of one format"
        )
    for trip_file in files:
        _require_not_empty(trip_file, path)
    return TripInput(root=path, files=tuple(files), input_format=formats.pop() or "", ignored=tuple(ignored))


def _require_not_empty(trip_file: Path, root: Path) -> None:
    if trip_file.stat().st_size == 0:
        where = trip_file if trip_file == root else f"{root} ({trip_file.relative_to(root)})"
        raise TripInputError(f"--input {where}: the file is empty")


def _names(paths: list[Path] | tuple[Path, ...], root: Path, limit: int = 3) -> str:
    names = [str(p.relative_to(root)) for p in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def describe_ignored(trip_input: TripInput) -> str:
    names = _names(trip_input.ignored, trip_input.root)
    return f"ignored {len(trip_input.ignored)} file(s) under {trip_input.root} that are not trip files: {names}"


@dataclass
class Staging:
    """Where each user file was staged, to say the user's path in messages about the staged copy."""

    user_root: Path | None = None
    staged_root_uri: str = ""
    user_path_by_uri: dict[str, Path] = field(default_factory=dict)

    def as_user_text(self, text: str) -> str:
        """Rewrite staged s3:// locations in a message to the user's own files (longest first)."""
        for uri in sorted(self.user_path_by_uri, key=len, reverse=True):
            text = text.replace(uri, str(self.user_path_by_uri[uri]))
        if self.user_root is not None and self.staged_root_uri:
            folder = str(self.user_root) if self.user_root.is_file() else f"{self.user_root}/"
            text = text.replace(self.staged_root_uri, folder)
            text = text.replace(self.staged_root_uri.rstrip("/"), str(self.user_root))
        return text


def stage_trip_files(trip_input: TripInput, raw_folder: Path, raw_folder_uri: str) -> tuple[list[Path], Staging]:
    """Copy the trip files under `raw_folder`, each at its path relative to `--input`."""
    staging = Staging(user_root=trip_input.root, staged_root_uri=raw_folder_uri.rstrip("/") + "/")
    staged: list[Path] = []
    for trip_file in trip_input.files:
        relative = trip_input.relative(trip_file)
        target = raw_folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trip_file, target)
        staged.append(target)
        staging.user_path_by_uri[staging.staged_root_uri + relative.as_posix()] = trip_file
    return staged, staging
