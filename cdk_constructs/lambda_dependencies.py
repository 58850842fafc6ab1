"""Lambda functions' pip dependencies, installed for the Lambda platform once per requirements hash.

Bundling a function copies its dependencies from `.cache/lambda-dependencies/<hash>/`, where `<hash>`
covers the requirements file's text and everything that decides which wheels pip picks (Python version,
platforms, implementation). Only a requirements set not seen before is installed with pip, so synth needs
the package registry once per set and works offline after that. `make install` fills the cache for every
function (`python -m cdk_constructs.lambda_dependencies`), so after the first install no synth needs the
network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / ".cache" / "lambda-dependencies"
LAMBDA_SOURCE_ROOT = REPO_ROOT / "lambda"
# Lambda's Python runtime (see python_function.LAMBDA_RUNTIME) and the wheels that load on it: Lambda's
# Python runtimes run on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels load.
PYTHON_VERSION = "3.14"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Bump when the layout or the pip options below change, so old entries are not reused.
_CACHE_FORMAT = "1"

Installer = Callable[[Path, Path], None]


def requirements_hash(requirements_text: str) -> str:
    """The cache key: the requirements (ignoring blank lines and comments) and the target platform."""
    lines = [line.split("#", 1)[0].strip() for line in requirements_text.splitlines()]
    digest = hashlib.sha256()
    for part in (_CACHE_FORMAT, PYTHON_VERSION, *PLATFORMS, "cp", "only-binary", *sorted(filter(None, lines))):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def pip_install(requirements: Path, target: Path) -> None:
    """pip-installs the requirements into `target` for the Lambda platform (manylinux wheels only)."""
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--requirement",
            str(requirements),
            "--target",
            str(target),
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--only-binary=:all:",
            "--no-compile",
            "--upgrade",
            *platform_args,
        ],
        check=True,
    )


def cached_dependencies(requirements: Path, cache_root: Path = CACHE_ROOT, install: Installer | None = None) -> Path:
    """The folder holding the installed requirements, installing them (default: pip) only if this set is new."""
    entry = cache_root / requirements_hash(requirements.read_text(encoding="utf-8"))
    if entry.is_dir():
        return entry
    cache_root.mkdir(parents=True, exist_ok=True)
    # Installed beside the entry and renamed into place, so a concurrent or interrupted synth never sees
    # half an entry.
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-", dir=cache_root))
    try:
        (install or pip_install)(requirements, staging)
        try:
            os.replace(staging, entry)
        except OSError:
            if not entry.is_dir():  # not another synth that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def function_requirements(source_root: Path = LAMBDA_SOURCE_ROOT) -> list[Path]:
    return sorted(path for path in source_root.glob("*/requirements.txt") if path.read_text(encoding="utf-8").strip())


def prefetch(requirement_files: Sequence[Path], cache_root: Path = CACHE_ROOT) -> list[Path]:
    return [cached_dependencies(requirements, cache_root) for requirements in requirement_files]


if __name__ == "__main__":
    entries = prefetch(function_requirements())
    print(f"Lambda dependencies cached for {len(set(entries))} requirement set(s) under {CACHE_ROOT}")
