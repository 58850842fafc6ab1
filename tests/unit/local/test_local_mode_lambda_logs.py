"""The local mode shows the in-process Lambda code's log lines as progress (and --quiet hides them)."""

from __future__ import annotations

import io
import logging

import pytest

from local_mode.ml_system import _lambda_logs_as_progress
from local_mode.progress import Progress


@pytest.mark.parametrize(
    "logger_name",
    ["callback_reconciler.logic", "callback_handler.logic", "approval_notifier.logic", "pipeline_callback.callback"],
)
def test_lambda_log_lines_become_progress_lines_and_quiet_hides_them(logger_name: str) -> None:
    shown, hidden = io.StringIO(), io.StringIO()
    for progress in (Progress(shown), Progress(hidden, quiet=True)):
        with _lambda_logs_as_progress(progress):
            logging.getLogger(logger_name).info("ended step for token %s", "Tok0000001")
    assert "[lambda] ended step for token Tok0000001" in shown.getvalue()
    assert hidden.getvalue() == ""
