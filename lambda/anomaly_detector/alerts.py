"""Which anomaly groups to announce, and how: an SNS message a person can act on, or a Lambda event.

Everything here works on the anomaly group record (plain dicts; the README's "Anomaly group record").
:func:`groups_to_alert` decides; :func:`alert_subject` / :func:`alert_message` write; an
:class:`AlertTarget` delivers. ``logic.py`` calls them in that order and then marks the groups
``alerted``, so an ongoing group is announced once, not in every interval.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, get_args

from anomaly_detector.feedback import FeedbackLabel, suppressing_label
from anomaly_detector.series_model import DEFAULT_MODEL, Evidence  # the Lambda runs the default model

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sns import SNSClient

# SNS Publish, Subject: "Constraints: Subjects must be UTF-8 text with no line breaks or control characters,
# and less than 100 characters long." (SNS API reference, PublishRequest.Subject). E-mail subjects are sent as
# 7-bit ASCII; Amazon Managed Prometheus' SNS validation rules also rewrite subjects with "control or non-ASCII
# characters". So: printable ASCII only, at most 99 characters.
SUBJECT_MAX_CHARS = 99
# SNS Publish, Message: "messages must be UTF-8 encoded strings and at most 256 KB in size (262,144 bytes, not
# 262,144 characters)". Kept a little under, for the topic's own envelope.
SNS_MESSAGE_MAX_BYTES = 250_000
# Lambda Invoke: "For asynchronous invocations, the maximum payload size is 1 MB." (Lambda API reference, Invoke;
# older pages and InvokeAsync say 256 KB). The payload is kept within the older, stricter 256 KB so it is
# accepted in every partition and region, whatever its quota history.
LAMBDA_EVENT_MAX_BYTES = 256 * 1024
# Root cause: the top contributors whose shares add up to at least this much.
ROOT_CAUSE_SHARE = 0.5
# How many contributors the message's text lists (the record below it carries all of them).
MESSAGE_CONTRIBUTORS = 10
ROLLED_UP = "*"


class AlertTarget(Protocol):
    def send(self, subject: str, message: str, group: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class SnsAlertTarget:
    """The environment's alerts topic: e-mail subscribers see the subject; every protocol gets the message."""

    sns: SNSClient
    topic_arn: str

    def send(self, subject: str, message: str, group: Mapping[str, Any]) -> None:
        del group  # the record is already part of the message
        self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=fit_message(message))


@dataclass(frozen=True)
class LambdaAlertTarget:
    """A user's function, invoked asynchronously with the group record as its event (Lambda queues and retries)."""

    lambda_client: LambdaClient
    function_arn: str

    def send(self, subject: str, message: str, group: Mapping[str, Any]) -> None:
        del subject, message
        payload = json.dumps(trim_record(group, LAMBDA_EVENT_MAX_BYTES), separators=(",", ":"))
        self.lambda_client.invoke(FunctionName=self.function_arn, InvocationType="Event", Payload=payload.encode())


def groups_to_alert(
    groups: Sequence[Mapping[str, Any]], *, min_severity: float, labels: Sequence[FeedbackLabel]
) -> list[Mapping[str, Any]]:
    """The groups to announce now: never alerted yet, severe enough, and not labelled away.

    A new group alerts when it opens at or above ``min_severity``; an ongoing group that opened below it
    alerts in the first interval it reaches it; a group that already alerted never alerts again (its
    record is updated every interval instead). A "not_anomaly" label for the same pattern
    (:func:`anomaly_detector.feedback.suppressing_label`) keeps a group quiet.
    """
    chosen = []
    for group in groups:
        if group.get("alerted"):
            continue
        if group.get("status") not in ("new", "ongoing"):
            continue
        if float(group.get("severity", 0.0)) < min_severity:
            continue
        if suppressing_label(group, labels) is not None:
            continue
        chosen.append(group)
    return chosen


def alert_subject(group: Mapping[str, Any]) -> str:
    """E.g. ``revenue low in web/de, severity 87, 14:05-14:10 UTC`` (printable ASCII, <= 99 characters)."""
    measure = _ascii(str(group["measure"]))
    direction = str(group["direction"])
    tail = f", severity {_severity(group)}, {_clock(group['interval_start'])}-{_clock(group['interval_end'])} UTC"
    head = f"{measure} {direction} in "
    place = _ascii(where(group))
    room = SUBJECT_MAX_CHARS - len(head) - len(tail)
    if len(place) > room:
        place = place[: max(room - 3, 0)].rstrip() + "..."
    subject = f"{head}{place}{tail}"
    if len(subject) > SUBJECT_MAX_CHARS:  # a very long measure name: keep the start, which says what it is
        subject = subject[: SUBJECT_MAX_CHARS - 3] + "..."
    return subject


def alert_message(group: Mapping[str, Any]) -> str:
    """Readable text (what, where, how much, when, what to do), then the group record as JSON."""
    observed, expected = float(group["observed"]), float(group["expected"])
    lines = [
        f"{group['measure']} ({group['aggregation']}) is {group['direction']} in {where(group)}: "
        f"severity {_severity(group)} of 100.",
        f"Interval: {_day_and_clock(group['interval_start'])}-{_clock(group['interval_end'])} UTC "
        f"(group {group['status']}, opened {_day_and_clock(group['opened_at'])} UTC).",
        f"Observed {_number(observed)}, expected {_number(expected)} ({_change(observed, expected)}).",
        *([f"Unusual: {unusual}."] if (unusual := unusual_text(group)) else []),
        f"Root cause: {root_cause_text(group) or 'no contributor deviates in this direction'}.",
        f"Most anomalous level: {_level_text(group)}.",
        "",
        "Contributors (share of the deviation):",
    ]
    contributors = list(group.get("contributors", []))
    for contributor in contributors[:MESSAGE_CONTRIBUTORS]:
        lines.append(
            f"  {_share(contributor['share'])} {combination_text(contributor['dimensions'])}: "
            f"observed {_number(contributor['observed'])}, expected {_number(contributor['expected'])}, "
            f"severity {float(contributor['severity']):.0f}"
        )
    if len(contributors) > MESSAGE_CONTRIBUTORS:
        lines.append(f"  ... and {len(contributors) - MESSAGE_CONTRIBUTORS} more (in the record below)")
    lines += [
        "",
        f"Group id: {group['group_id']}",
        "Not an anomaly? Label it so the same pattern stops alerting:",
        f"  python -m streaming_cli feedback {group['group_id']} --not-anomaly --env <environment>",
        "",
        "Record:",
    ]
    text = "\n".join(lines) + "\n"
    budget = SNS_MESSAGE_MAX_BYTES - len(text.encode("utf-8"))
    return text + json.dumps(trim_record(group, budget), indent=2, ensure_ascii=False)


def unusual_text(group: Mapping[str, Any]) -> str | None:
    """What made the group's most severe series anomalous, in words; None for a record without the evidence.

    The observed-versus-expected line is one interval's value. A shift or volatility anomaly is about the
    last few intervals together, so without this line an alert on a value near its forecast reads as
    nonsense.
    """
    series = next(iter(group.get("anomalous_series") or ()), None)
    evidence = group.get("evidence")
    if not isinstance(series, Mapping) or evidence not in get_args(Evidence):
        return None
    place = combination_text(series.get("dimensions") or {})
    if evidence == "point":
        low, high = series.get("expected_low"), series.get("expected_high")
        if low is not None and high is not None:
            usual = f"outside its expected range of {_about(low)} to {_about(high)}"
        elif high is not None:
            usual = f"above the {_about(high)} expected at most"
        elif low is not None:
            usual = f"below the {_about(low)} expected at least"
        else:
            usual = "far from its expected value"
        return f"the value itself: {place} was {_number(series.get('observed', 0.0))}, {usual}"
    if evidence == "shift":
        shift = series.get("mean_shift")
        moved = f"averaged {_about(shift, signed=True)} from" if shift is not None else "moved away from"
        last = f"last {DEFAULT_MODEL.shift_window} intervals"
        return f"a lasting shift: {place}'s {last} {moved} its usual level (one alone can look ordinary)"
    return (
        f"how {place} moves: over the last {DEFAULT_MODEL.vol_window} intervals its changes from one interval "
        "to the next were far larger than usual, whatever its level"
    )


def root_cause(group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The top contributors (already ordered by share) whose shares add up to >= 50% of the deviation."""
    chosen: list[Mapping[str, Any]] = []
    total = 0.0
    for contributor in group.get("contributors", []):
        if float(contributor["share"]) <= 0:
            break
        chosen.append(contributor)
        total += float(contributor["share"])
        if total >= ROOT_CAUSE_SHARE - 1e-9:
            break
    return chosen


def root_cause_text(group: Mapping[str, Any]) -> str:
    """E.g. ``78% in web/de`` or ``41% in web/de, 22% in app/fr``."""
    return ", ".join(
        f"{_share(contributor['share'])} in {combination_text(contributor['dimensions'])}"
        for contributor in root_cause(group)
    )


def where(group: Mapping[str, Any]) -> str:
    """Where the group happened, as a person would act on it.

    The most specific anomalous series that covers every root-cause combination: "web/de" when one
    combination carries the deviation (even if the total is what moved most), "web (all marketplaces)"
    when it is spread over one platform's combinations. Without such a series: the root-cause
    combinations ("web/de + app/fr"), else the group's most severe series at its most aggregated level.
    """
    causes = root_cause(group)
    if causes:
        covering = [
            series
            for series in group.get("anomalous_series", [])
            if all(_covers(series["dimensions"], cause["dimensions"]) for cause in causes)
        ]
        if covering:
            best = min(
                covering,
                key=lambda series: (
                    sum(value == ROLLED_UP for value in series["dimensions"].values()),
                    -float(series.get("severity", 0.0)),
                ),
            )
            return combination_text(best["dimensions"])
        if len(causes) <= 2:
            return " + ".join(combination_text(cause["dimensions"]) for cause in causes)
    level = group.get("level", "combination")
    at_level = [series for series in group.get("anomalous_series", []) if series.get("level") == level]
    if at_level:
        top = max(at_level, key=lambda series: float(series.get("severity", 0.0)))
        return combination_text(top["dimensions"])
    if causes:
        return " + ".join(combination_text(cause["dimensions"]) for cause in causes)
    return "no single combination"


def _covers(series: Mapping[str, str], combination: Mapping[str, str]) -> bool:
    """A series (values or roll-ups) covers a combination when each value it keeps is the combination's."""
    return all(value == ROLLED_UP or combination.get(name) == value for name, value in series.items())


def combination_text(dimensions: Mapping[str, str]) -> str:
    """``web/de``; with roll-ups ``web (all marketplaces)``; fully rolled up ``all platforms and marketplaces``."""
    kept = [str(value) for value in dimensions.values() if value != ROLLED_UP]
    rolled = [f"{name}s" for name, value in dimensions.items() if value == ROLLED_UP]
    if not kept:
        return "all " + " and ".join(rolled) if rolled else "everything"
    if not rolled:
        return "/".join(kept)
    return f"{'/'.join(kept)} (all {' and '.join(rolled)})"


def trim_record(group: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """The record, with its longest lists (contributors, anomalous series) cut until its JSON fits ``max_bytes``.

    A trimmed record says so: ``"trimmed": {"contributors": <full count>, ...}``; the full record is in the
    anomalies file.
    """
    record = dict(group)
    full = {name: len(record.get(name) or []) for name in ("contributors", "anomalous_series")}
    keep = dict(full)
    while _size(record) > max_bytes:
        longest = max(keep, key=lambda name: keep[name])
        if keep[longest] == 0:
            break  # nothing left to cut; the caller's service rejects it and the error names the group
        keep[longest] //= 2
        record = dict(group)
        for name, count in keep.items():
            record[name] = list(group.get(name) or [])[:count]
        record["trimmed"] = {name: full[name] for name in full if keep[name] < full[name]}
    return record


def fit_message(message: str) -> str:
    """A message within SNS's byte limit (cut at a character boundary, with a note)."""
    encoded = message.encode("utf-8")
    if len(encoded) <= SNS_MESSAGE_MAX_BYTES:
        return message
    note = "\n[message cut to fit SNS's 256 KB limit; the full record is in the anomalies file]"
    return encoded[: SNS_MESSAGE_MAX_BYTES - len(note)].decode("utf-8", errors="ignore") + note


def _size(record: Mapping[str, Any]) -> int:
    return len(json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))


def _ascii(text: str) -> str:
    """Printable ASCII: accents dropped (München -> Munchen), anything else '?', no control characters."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(char for char in decomposed if not unicodedata.combining(char))
    return "".join(char if " " <= char <= "~" else "?" for char in kept)


def _severity(group: Mapping[str, Any]) -> str:
    return str(math.floor(float(group["severity"])))


def _level_text(group: Mapping[str, Any]) -> str:
    return {"combination": "dimension combinations", "rollup": "a roll-up", "total": "the total"}.get(
        str(group.get("level")), str(group.get("level"))
    )


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _clock(timestamp: str) -> str:
    return _parse(timestamp).strftime("%H:%M")


def _day_and_clock(timestamp: str) -> str:
    return _parse(timestamp).strftime("%Y-%m-%d %H:%M")


def _share(share: Any) -> str:
    return f"{float(share) * 100:.0f}%"


def _number(value: Any) -> str:
    return f"{float(value):,.6g}"


def _about(value: Any, *, signed: bool = False) -> str:
    """A computed bound or mean, as a reader wants it: whole numbers from 1,000, else 4 significant digits."""
    number = float(value)
    sign = "+" if signed else ""
    return f"{number:{sign},.0f}" if abs(number) >= 1000 else f"{number:{sign},.4g}"


def _change(observed: float, expected: float) -> str:
    if expected == 0:
        return "expected none"
    return f"{(observed - expected) / abs(expected) * 100:+.1f}%"
