"""cdk-nag suppressions in one place: every one must carry a written reason."""

from __future__ import annotations

from collections.abc import Sequence

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct


def acknowledge(
    scope: IConstruct,
    rule: str,
    reason: str,
    applies_to: Sequence[str | RegexAppliesTo] | None = None,
) -> None:
    """Accept one cdk-nag rule (optionally only some findings of it) on ``scope`` and its children."""
    if len(reason.strip()) < 10:
        raise ValueError(f"a real reason is required to suppress {rule}")
    NagSuppressions.add_resource_suppressions(
        scope,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )


def matching(pattern: str) -> RegexAppliesTo:
    """A finding matcher such as ``matching(r"^Resource::.*/taxi/\\*$")``."""
    return RegexAppliesTo(regex=f"/{pattern}/")
