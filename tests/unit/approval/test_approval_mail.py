"""The approval mail's text: each figure once, in words a person reads without the report at hand."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from approval_support import EXECUTION_ARN, NOW, REPORT, REPORT_URI

from approval.mail import compose_mail
from approval.report import parse_report
from approval.store import PENDING, ApprovalRequest
from pipeline_evaluation.cutoff import DAY_SECONDS, ScoreCutoff


def mail_for(cutoff_method: str) -> str:
    report: dict[str, Any] = {**REPORT, "cutoff": {"value": 1.7645, "method": cutoff_method}}
    request = ApprovalRequest(
        key="k",
        token="Tok0000001",
        execution_arn=EXECUTION_ARN,
        report_uri=REPORT_URI,
        summary=parse_report(json.dumps(report)),
        created_at=NOW,
        expires_at=NOW + 72 * 3600,
        status=PENDING,
        form_token="f",
    )
    return compose_mail(request, "r" * 43, "https://approve.example.on.aws", "dev").message


def cutoff_line(text: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith("Cut-off:")]
    return line


@pytest.mark.parametrize(
    "cutoff",
    [
        ScoreCutoff(
            value=1.7645,
            typical_block_max=1.1328,
            block_spread=0.1685,
            spreads=3.75,
            blocks=31,
            block_seconds=DAY_SECONDS,
        ),
        ScoreCutoff(
            value=1.7645,
            typical_block_max=1.1328,
            block_spread=0.1685,
            spreads=3.75,
            blocks=31,
            block_seconds=DAY_SECONDS,
            capped=True,
        ),
        ScoreCutoff(
            value=1.7645, typical_block_max=1.7645, block_spread=0.0, spreads=3.75, blocks=31, block_seconds=DAY_SECONDS
        ),
    ],
    ids=["spreads", "share-capped", "no-spread"],
)
def test_the_cutoff_line_names_the_cutoff_and_its_value_once(cutoff: ScoreCutoff) -> None:
    # Given a report whose method text is what the Evaluate step writes (it starts "cut-off <value>")
    method = cutoff.describe()
    assert method.lower().startswith("cut-off 1.7645")

    # When the mail is composed
    line = cutoff_line(mail_for(method))

    # Then "cut-off" and the value each appear once on the line, and the explanation is kept
    assert len(re.findall("cut-off", line, flags=re.IGNORECASE)) == 1, line
    assert line.count("1.764") == 1, line
    assert line.startswith("Cut-off:         1.764")
    assert method.split("1.7645", 1)[1].lstrip(" =:") in line


def test_a_method_without_its_own_heading_is_shown_in_brackets() -> None:
    line = cutoff_line(mail_for("median + 6 x MAD of this run's scores"))
    assert line == "Cut-off:         1.764 (median + 6 x MAD of this run's scores)"
