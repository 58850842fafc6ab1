"""`python -m local_mode` (what `make local` runs)."""

from __future__ import annotations

import sys
from pathlib import Path

# `lambda/` cannot be a package name, so each function's package is imported from there (as in the tests).
_LAMBDA_FOLDER = str(Path(__file__).resolve().parent.parent / "lambda")
if _LAMBDA_FOLDER not in sys.path:
    sys.path.insert(0, _LAMBDA_FOLDER)

from local_mode.main import main  # noqa: E402 - needs the path above

if __name__ == "__main__":
    sys.exit(main())
