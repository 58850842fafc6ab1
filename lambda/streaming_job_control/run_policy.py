"""When the streaming job should be running: the one rule the deploy-time custom resource and the supervisor share.

- ``always``: whenever the stack is deployed.
- ``with_generator``: while the generator's EventBridge schedule is enabled (disable the rule, and the supervisor
  stops the job within one supervisor interval; enable it, and the job starts again).
- ``active_hours``: during ``[start, end)`` UTC every day; ``22-6`` spans midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

RUN_MODES = ("always", "with_generator", "active_hours")


@dataclass(frozen=True)
class RunPolicy:
    mode: str = "always"
    generator_rule_name: str | None = None
    active_hours_utc: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.mode not in RUN_MODES:
            raise ValueError(f"run mode must be one of {', '.join(RUN_MODES)}, got {self.mode!r}")
        if self.mode == "with_generator" and not self.generator_rule_name:
            raise ValueError("run mode 'with_generator' needs the generator's rule name")
        if self.mode == "active_hours":
            hours = self.active_hours_utc
            if hours is None or len(hours) != 2 or not all(0 <= hour <= 23 for hour in hours) or hours[0] == hours[1]:
                raise ValueError(f"run mode 'active_hours' needs two different hours 0-23, got {hours!r}")

    @classmethod
    def parse(cls, mode: str, generator_rule_name: str | None, active_hours: str | None) -> RunPolicy:
        """From the strings the environment or custom-resource properties carry (``active_hours`` as ``"8-20"``)."""
        hours: tuple[int, int] | None = None
        if active_hours:
            try:
                start, end = (int(part) for part in active_hours.split("-"))
            except ValueError:
                raise ValueError(f"active hours must look like '8-20', got {active_hours!r}") from None
            hours = (start, end)
        return cls(mode=mode, generator_rule_name=generator_rule_name or None, active_hours_utc=hours)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any] | None) -> RunPolicy:
        raw = (properties or {}).get("RunPolicy") or {}
        return cls.parse(
            str(raw.get("Mode") or "always"),
            str(raw.get("GeneratorRuleName") or "") or None,
            str(raw.get("ActiveHoursUtc") or "") or None,
        )


@dataclass(frozen=True)
class Decision:
    should_run: bool
    why: str


def in_active_hours(hours: tuple[int, int], now: datetime) -> bool:
    start, end = hours
    hour = now.hour
    return start <= hour < end if start < end else hour >= start or hour < end


def decide(policy: RunPolicy, now: datetime, events: EventBridgeClient | None) -> Decision:
    """Whether the job should be running now, and why (for logs and the operator)."""
    if policy.mode == "always":
        return Decision(True, "run mode is 'always'")
    if policy.mode == "active_hours":
        assert policy.active_hours_utc is not None
        start, end = policy.active_hours_utc
        inside = in_active_hours(policy.active_hours_utc, now)
        where = "inside" if inside else "outside"
        return Decision(inside, f"{now:%H:%M} UTC is {where} the active hours {start:02d}:00-{end:02d}:00 UTC")
    if events is None or policy.generator_rule_name is None:
        raise ValueError("run mode 'with_generator' needs an EventBridge client and the generator's rule name")
    state = events.describe_rule(Name=policy.generator_rule_name).get("State", "")
    return Decision(state == "ENABLED", f"the generator's schedule {policy.generator_rule_name} is {state}")
