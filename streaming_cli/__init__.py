"""`python -m streaming_cli`: look at the streaming detector's anomaly groups and label them (feedback).

The group records and labels are the detector's own (``anomaly_detector.alerts`` / ``feedback``), read from
the data bucket or, locally, from the out folder that mirrors it.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `lambda/` cannot be a package name, so the detector's package is imported from there (as in the tests).
_LAMBDA_FOLDER = str(Path(__file__).resolve().parent.parent / "lambda")
if _LAMBDA_FOLDER not in sys.path:
    sys.path.insert(0, _LAMBDA_FOLDER)
