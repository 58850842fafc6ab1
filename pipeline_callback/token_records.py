"""The durable per-token record (DynamoDB): start, stop and report each happen once per callback token.

One item per callback token. Conditional writes make the decisions atomic:

- ``claim_start``: the one delivery that may start the work takes a lease; a second delivery, a
  delivery after a stop, or one after the step was decided, is told so instead.
- ``record_stop``: a stop is written even when no start has been seen yet (a tombstone), so a start
  that arrives later does not launch work for a stopped execution.
- ``decide``: the first outcome (success or failure, from whichever component) wins; later reporters
  see it and do not send a different answer.
- ``mark_reported``: SageMaker accepted the outcome; reporters after that are recognised from the
  record, not from the text of SageMaker's error messages.

Items carry ``open = "open"`` while anything is left to do (the step is not answered, or its work may
still be running). The sparse global secondary index ``open-steps`` lists exactly those items, which
is what the reconciler reads. ``expires_at`` is the table's TTL attribute.

DynamoDB documents the building blocks used here: "a conditional write succeeds only if the item
attributes meet one or more expected conditions. Otherwise, it returns an error." (Developer Guide,
"Conditional writes"); a failed condition is ``ConditionalCheckFailedException``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline_callback.environment import ConfigError, required_variable
from pipeline_callback.faults import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_INDEX_NAME = "open-steps"
OPEN_MARKER = "open"
TOKEN_KEY = "token"  # noqa: S105 - an attribute name
TTL_ATTRIBUTE = "expires_at"
SUCCESS = "success"
FAILURE = "failure"
_CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class RecordSettings:
    """The callback-token table and the times written into each record (from the environment)."""

    table_name: str
    deadline_seconds: float
    ttl_seconds: float
    # How long one delivery holds the right to start the work (longer than the handler can run).
    lease_seconds: float

    def records(self, dynamodb: DynamoDBClient, clock: Callable[[], float] = time.time) -> TokenRecords:
        return TokenRecords(
            dynamodb, self.table_name, ttl_seconds=self.ttl_seconds, deadline_seconds=self.deadline_seconds, clock=clock
        )


def load_record_settings(environ: Mapping[str, str]) -> RecordSettings:
    """CALLBACK_TABLE_NAME, CALLBACK_DEADLINE_SECONDS, CALLBACK_RECORD_TTL_DAYS and START_LEASE_SECONDS."""
    return RecordSettings(
        table_name=required_variable(environ, "CALLBACK_TABLE_NAME"),
        deadline_seconds=_positive_number(environ, "CALLBACK_DEADLINE_SECONDS"),
        ttl_seconds=_positive_number(environ, "CALLBACK_RECORD_TTL_DAYS") * 86400,
        lease_seconds=_positive_number(environ, "START_LEASE_SECONDS", default="900"),
    )


def _positive_number(environ: Mapping[str, str], name: str, default: str | None = None) -> float:
    raw = environ.get(name, "").strip() or default
    if raw is None:
        raw = required_variable(environ, name)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"environment variable {name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class TokenRecord:
    """What is known about one callback token."""

    token: str
    execution_arn: str = ""
    input_location: str = ""
    output_location: str = ""
    mode: str = ""
    created_at: float = 0.0
    deadline_at: float = 0.0
    lease_owner: str = ""
    lease_until: float = 0.0
    started_at: float = 0.0
    task_arn: str = ""
    glue_run_id: str = ""
    stop_requested_at: float = 0.0
    outcome: str = ""
    outcome_reason: str = ""
    outcome_outputs: tuple[tuple[str, str], ...] = ()
    decided_by: str = ""
    reported_at: float = 0.0
    work_ended_at: float = 0.0
    is_open: bool = False
    last_error: str = ""

    @property
    def started(self) -> bool:
        return bool(self.started_at)

    @property
    def stop_requested(self) -> bool:
        return bool(self.stop_requested_at)

    @property
    def decided(self) -> bool:
        return bool(self.outcome)

    @property
    def reported(self) -> bool:
        return bool(self.reported_at)

    def output_parameters(self) -> list[dict[str, str]]:
        return [{"Name": name, "Value": value} for name, value in self.outcome_outputs]


@dataclass(frozen=True)
class Claim:
    """The result of claim_start: ``claimed`` means this caller may start the work."""

    claimed: bool
    record: TokenRecord
    why_not: str = ""


@dataclass(frozen=True)
class Decision:
    """The result of decide: ``first`` means this caller's outcome is the step's outcome."""

    first: bool
    record: TokenRecord


def _number(item: Mapping[str, Any], name: str) -> float:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else 0.0


def _string(item: Mapping[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def record_from_item(item: Mapping[str, Any]) -> TokenRecord:
    outputs = json.loads(_string(item, "outcome_outputs") or "[]")
    return TokenRecord(
        token=_string(item, TOKEN_KEY),
        execution_arn=_string(item, "execution_arn"),
        input_location=_string(item, "input_location"),
        output_location=_string(item, "output_location"),
        mode=_string(item, "mode"),
        created_at=_number(item, "created_at"),
        deadline_at=_number(item, "deadline_at"),
        lease_owner=_string(item, "lease_owner"),
        lease_until=_number(item, "lease_until"),
        started_at=_number(item, "started_at"),
        task_arn=_string(item, "task_arn"),
        glue_run_id=_string(item, "glue_run_id"),
        stop_requested_at=_number(item, "stop_requested_at"),
        outcome=_string(item, "outcome"),
        outcome_reason=_string(item, "outcome_reason"),
        outcome_outputs=tuple((str(o["Name"]), str(o["Value"])) for o in outputs),
        decided_by=_string(item, "decided_by"),
        reported_at=_number(item, "reported_at"),
        work_ended_at=_number(item, "work_ended_at"),
        is_open=_string(item, "open") == OPEN_MARKER,
        last_error=_string(item, "last_error"),
    )


@dataclass
class TokenRecords:
    """The callback-token table. ``clock`` returns epoch seconds (injected in tests)."""

    dynamodb: DynamoDBClient
    table_name: str
    ttl_seconds: float = 30 * 86400
    deadline_seconds: float = 3 * 3600
    clock: Callable[[], float] = time.time
    _values: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- reading -------------------------------------------------------------------------------
    def get(self, token: str) -> TokenRecord | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key={TOKEN_KEY: {"S": token}}, ConsistentRead=True
        )
        item = response.get("Item")
        return record_from_item(item) if item else None

    def open_records(self, page_size: int = 100) -> Iterator[TokenRecord]:
        """Every record with something left to do, oldest first (the sparse open-steps index)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OPEN_INDEX_NAME,
            "KeyConditionExpression": "#open = :open",
            "ExpressionAttributeNames": {"#open": "open"},
            "ExpressionAttributeValues": {":open": {"S": OPEN_MARKER}},
            "Limit": page_size,
        }
        while True:
            page = self.dynamodb.query(**request)
            for item in page.get("Items", []):
                # The index holds the keys only; read the whole, current item.
                record = self.get(_string(item, TOKEN_KEY))
                if record is not None and record.is_open:
                    yield record
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    # -- writing -------------------------------------------------------------------------------
    def _update(
        self,
        token: str,
        set_clauses: Mapping[str, Any],
        *,
        condition: str | None = None,
        remove: tuple[str, ...] = (),
        if_not_exists: Mapping[str, Any] | None = None,
        extra_values: Mapping[str, Any] | None = None,
    ) -> TokenRecord:
        """One UpdateItem: SET name = value (or if_not_exists), REMOVE names; returns the new item."""
        names: dict[str, str] = {}
        values: dict[str, Any] = dict(extra_values or {})
        assignments = []
        for index, (name, value) in enumerate(set_clauses.items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = _attribute(value)
            assignments.append(f"#s{index} = :s{index}")
        for index, (name, value) in enumerate((if_not_exists or {}).items()):
            names[f"#n{index}"] = name
            values[f":n{index}"] = _attribute(value)
            assignments.append(f"#n{index} = if_not_exists(#n{index}, :n{index})")
        expression = "SET " + ", ".join(assignments)
        if remove:
            for index, name in enumerate(remove):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove)))
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {TOKEN_KEY: {"S": token}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names | _condition_names(condition),
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if condition:
            request["ConditionExpression"] = condition
        response = self.dynamodb.update_item(**request)
        return record_from_item(response.get("Attributes", {}))

    def _new_item_defaults(self, now: float) -> dict[str, Any]:
        return {
            "created_at": now,
            "deadline_at": now + self.deadline_seconds,
            TTL_ATTRIBUTE: int(now + self.ttl_seconds),
        }

    def claim_start(
        self,
        token: str,
        *,
        owner: str,
        lease_seconds: float,
        execution_arn: str,
        input_location: str,
        output_location: str,
        mode: str,
    ) -> Claim:
        """Take the right to start the work for `token`, or learn why not.

        Granted when there is no record yet, or when an earlier claim's lease ran out before it
        recorded a start (its caller died), or when this same owner claims again (a botocore retry
        of a request that had succeeded). Refused once a start, a stop or an outcome is recorded.
        """
        now = self.clock()
        try:
            record = self._update(
                token,
                {
                    "lease_owner": owner,
                    "lease_until": now + lease_seconds,
                    "execution_arn": execution_arn,
                    "input_location": input_location,
                    "output_location": output_location,
                    "mode": mode,
                    "open": OPEN_MARKER,
                },
                if_not_exists=self._new_item_defaults(now),
                condition=(
                    "attribute_not_exists(#tok) OR #lease_owner = :owner OR "
                    "(attribute_not_exists(#started) AND attribute_not_exists(#stop) "
                    "AND attribute_not_exists(#outcome) AND #lease_until < :now)"
                ),
                extra_values={":owner": {"S": owner}, ":now": {"N": _n(now)}},
            )
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
            existing = self.get(token)
            if existing is None:  # deleted in between (TTL): treat as a refusal, the caller retries
                raise
            return Claim(claimed=False, record=existing, why_not=_why_not_claimed(existing, now))
        return Claim(claimed=True, record=record)

    def record_started(self, token: str, *, owner: str, task_arn: str = "", glue_run_id: str = "") -> TokenRecord:
        """Note the work just launched. Returns the record: if it shows a stop or an outcome, undo the start."""
        values: dict[str, Any] = {"started_at": self.clock()}
        if task_arn:
            values["task_arn"] = task_arn
        if glue_run_id:
            values["glue_run_id"] = glue_run_id
        return self._update(
            token, values, condition="#lease_owner = :owner", extra_values={":owner": {"S": owner}}
        )

    def record_glue_run(self, token: str, run_id: str) -> TokenRecord:
        """The Fargate task started the Glue run (poll mode)."""
        now = self.clock()
        return self._update(
            token,
            {"glue_run_id": run_id, "open": OPEN_MARKER},
            if_not_exists={"started_at": now, **self._new_item_defaults(now)},
        )

    def record_stop(self, token: str, *, execution_arn: str = "") -> TokenRecord:
        """A stop request, recorded even before any start (then the start is never made)."""
        now = self.clock()
        defaults = self._new_item_defaults(now) | {"stop_requested_at": now}
        if execution_arn:
            defaults["execution_arn"] = execution_arn
        return self._update(token, {"open": OPEN_MARKER}, if_not_exists=defaults)

    def decide(
        self,
        token: str,
        *,
        outcome: str,
        reason: str = "",
        outputs: list[dict[str, str]] | None = None,
        decided_by: str,
    ) -> Decision:
        """Record the step's outcome if none is recorded yet; otherwise return the one that is."""
        now = self.clock()
        try:
            record = self._update(
                token,
                {
                    "outcome": outcome,
                    "outcome_reason": reason,
                    "outcome_outputs": json.dumps(outputs or []),
                    "decided_by": decided_by,
                    "decided_at": now,
                    "open": OPEN_MARKER,
                },
                if_not_exists=self._new_item_defaults(now),
                condition="attribute_not_exists(#outcome) OR (#outcome = :outcome AND #decided_by = :by)",
                extra_values={":outcome": {"S": outcome}, ":by": {"S": decided_by}},
            )
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
            existing = self.get(token)
            if existing is None:
                raise
            return Decision(first=False, record=existing)
        return Decision(first=True, record=record)

    def mark_reported(self, token: str, *, note: str, work_ended: bool) -> TokenRecord:
        """SageMaker has the outcome. The record leaves the open index once the work has ended too."""
        now = self.clock()
        values: dict[str, Any] = {"reported_at": now, "report_note": note}
        if work_ended:
            values["work_ended_at"] = now
            return self._update(token, values, remove=("open",))
        return self._update(token, values)

    def mark_work_ended(self, token: str, *, note: str) -> TokenRecord:
        """The work is over (or was stopped). Closes the record if the step is answered as well."""
        now = self.clock()
        record = self._update(token, {"work_ended_at": now, "work_note": note})
        if record.reported:
            record = self._update(token, {"closed_at": now}, remove=("open",))
        return record

    def note_error(self, token: str, text: str) -> None:
        self._update(token, {"last_error": text[:1000]})


def _why_not_claimed(record: TokenRecord, now: float) -> str:
    if record.stop_requested:
        return "the execution was stopped before the work started"
    if record.decided:
        return f"the step was already decided ({record.outcome}, by {record.decided_by})"
    if record.started:
        work = record.glue_run_id or record.task_arn or "the work"
        return f"already started ({work})"
    return f"another delivery holds the start lease for {max(0.0, record.lease_until - now):.0f}s"


_CONDITION_NAMES = {
    "#tok": TOKEN_KEY,
    "#lease_owner": "lease_owner",
    "#lease_until": "lease_until",
    "#started": "started_at",
    "#stop": "stop_requested_at",
    "#outcome": "outcome",
    "#decided_by": "decided_by",
}


def _condition_names(condition: str | None) -> dict[str, str]:
    if not condition:
        return {}
    return {alias: name for alias, name in _CONDITION_NAMES.items() if alias in condition}


def _n(value: float) -> str:
    return repr(round(value, 3))


def _attribute(value: Any) -> dict[str, str]:
    if isinstance(value, bool):
        raise TypeError("booleans are not stored")
    if isinstance(value, int | float):
        return {"N": _n(float(value))}
    return {"S": str(value)}
