"""`--out`: the local mode writes only into a folder it created, and never deletes what it did not write.

A run marks its folder with :data:`MARKER`. A later run into the same folder replaces only the entries a
run writes (:data:`OUTPUT_ENTRIES`); a non-empty folder without the marker is refused, because its `logs/`
or `s3/` may be the user's own. A folder from before the marker existed is recognised by its
`summary.txt`.

The user's own input inside those entries is kept (:data:`KEPT_ENTRIES`): the feedback labels that
``python -m streaming_cli feedback ... --out <out>`` writes, which the next run's detector reads (its group ids
are the same, since a run's data is seeded).
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".local-mode-output"
# Everything a run writes directly under --out; only these are removed before the next run.
OUTPUT_ENTRIES = ("s3", "pipeline", "streaming", "charts", "logs", "approval", "summary.txt", "report.html")
# User input under those entries, kept across runs (paths relative to --out).
KEPT_ENTRIES = ("streaming/feedback",)
_SUMMARY_SIGNATURE = "LOCAL MODE SUMMARY"
_ASIDE = ".kept-while-clearing"  # where kept entries wait while the run's entries are removed


class OutputFolderError(ValueError):
    """`--out` points at something the local mode must not write into; the message says what to do."""


def is_previous_output(out: Path) -> bool:
    if (out / MARKER).is_file():
        return True
    summary = out / "summary.txt"
    try:
        return summary.is_file() and _SUMMARY_SIGNATURE in summary.read_text(encoding="utf-8", errors="replace")[:400]
    except OSError:
        return False


def prepare_output_folder(out: Path) -> None:
    """Create `out`, or clear a previous run's entries from it; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out} is a file, not a folder: pick a folder, e.g. --out out")
    if out.is_dir() and any(out.iterdir()) and not is_previous_output(out):
        raise OutputFolderError(
            f"--out {out} is not empty and holds no earlier local-mode output ({MARKER} missing); "
            "nothing was deleted. Pick a new or empty folder, e.g. --out out/run-2"
        )
    out.mkdir(parents=True, exist_ok=True)
    _put_back_kept(out)  # what a run interrupted while clearing had set aside
    _move_kept(out, out / _ASIDE)  # renames: nothing is copied
    for name in OUTPUT_ENTRIES:
        entry = out / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    _put_back_kept(out)
    (out / MARKER).write_text(
        "Written by `python -m local_mode`. A later run into this folder replaces: "
        + ", ".join(OUTPUT_ENTRIES)
        + " (keeping "
        + ", ".join(KEPT_ENTRIES)
        + ")\n",
        encoding="utf-8",
    )


def _move_kept(source_root: Path, target_root: Path) -> None:
    for relative in KEPT_ENTRIES:
        source, target = source_root / relative, target_root / relative
        if source.is_dir() and not source.is_symlink() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)


def _put_back_kept(out: Path) -> None:
    _move_kept(out / _ASIDE, out)
    shutil.rmtree(out / _ASIDE, ignore_errors=True)
