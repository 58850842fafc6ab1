"""The one place the Evaluate job asks `pipeline_evaluation` (issue 10) for the cut-off and the events.

Until that package is part of the build, the report says so instead of inventing a decision: the
cut-off method reads "unavailable: ...", the cut-off is the highest score (so no window is flagged)
and there are no events. The approver sees that in the mail and on the page.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from evaluation_job.report import Decisions
from evaluation_job.scores import ScoredRow

UNAVAILABLE_METHOD = "unavailable: pipeline_evaluation (issue 10) is not in this build; no window flagged"


def decide(rows: Sequence[ScoredRow]) -> Decisions:
    if importlib.util.find_spec("pipeline_evaluation") is None:
        return Decisions(cutoff=max(row.score for row in rows), method=UNAVAILABLE_METHOD, flagged_windows=0, events=())
    raise NotImplementedError("connect pipeline_evaluation's cut-off and event merging here")  # pragma: no cover
