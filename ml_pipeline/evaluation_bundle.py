"""The Evaluate job as one zip file that `python3 job.zip` runs (a `__main__.py` at the root).

Built the same way for the stack's asset and for the local mode, byte for byte (sorted entries, fixed
timestamps), so the asset hash only changes when the code does.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evaluation_job", "pipeline_evaluation")
_ROOT_MAIN = b"import sys\nfrom evaluation_job.__main__ import main\n\nsys.exit(main())\n"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def write_evaluation_zip(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(_entry("__main__.py"), _ROOT_MAIN)
        for package in PACKAGES:
            folder = REPO_ROOT / package
            if not folder.is_dir():
                raise FileNotFoundError(f"the Evaluate job needs the {package}/ package at {folder}")
            for path in sorted(folder.rglob("*.py")):
                archive.writestr(_entry(str(path.relative_to(REPO_ROOT))), path.read_bytes())
    return target
