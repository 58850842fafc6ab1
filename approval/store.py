"""The approval requests in DynamoDB: one item per request, one per callback step, conditional writes only.

Table layout (partition key `pk`, string):
- `request#<sha256 of the reference>`: the request a link acts on. `status` goes PENDING -> APPROVED |
  REJECTED | EXPIRED | STOPPED | FAILED (the notifier gave up on its last delivery) exactly once, by a
  conditional update (`status = PENDING`), so two clicks, an approve racing a reject, or a click racing
  the expiry check: exactly one write wins.
- `step#<callback token>`: makes creation idempotent per callback step (SQS delivers at least once)
  and keeps the link until the mail is out (then only the hash remains anywhere).
- GSI `open-requests` (`open_shard`, `open_due`): sparse; holds a request while it is PENDING (due at
  its expiry) and, after the decision, until SageMaker has been told (due at the decision time). The
  expiry check reads it, so a decision whose callback failed is redelivered, never lost.
- `expires_ttl`: DynamoDB TTL removes items 30 days after they expire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from approval.references import new_form_token, new_reference, reference_key
from approval.report import ReportSummary
from pipeline_callback.faults import TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
STOPPED = "STOPPED"
# The notifier could not send the request on the message's last delivery; `comment` holds the reason.
FAILED = "FAILED"
DECIDED_STATUSES = (APPROVED, REJECTED, EXPIRED, STOPPED, FAILED)
OPEN_INDEX = "open-requests"
OPEN_SHARD = "open"
TTL_ATTRIBUTE = "expires_ttl"
RETENTION_AFTER_EXPIRY_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class ApprovalRequest:
    key: str
    token: str
    execution_arn: str
    report_uri: str
    summary: ReportSummary
    created_at: int
    expires_at: int
    status: str
    form_token: str
    decided_at: int | None = None
    decided_by: str | None = None
    comment: str | None = None
    decided_via: str | None = None
    delivered_at: int | None = None

    def is_open_for_decision(self, now: int) -> bool:
        return self.status == PENDING and now < self.expires_at

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApprovalRequest:
        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        def number(name: str) -> int | None:
            return int(item[name]["N"]) if name in item else None

        return cls(
            key=item["pk"]["S"].removeprefix("request#"),
            token=item["token"]["S"],
            execution_arn=item["execution_arn"]["S"],
            report_uri=item["report_uri"]["S"],
            summary=ReportSummary.from_item(json.loads(item["summary"]["S"])),
            created_at=int(item["created_at"]["N"]),
            expires_at=int(item["expires_at"]["N"]),
            status=item["status"]["S"],
            form_token=item["form_token"]["S"],
            decided_at=number("decided_at"),
            decided_by=text("decided_by"),
            comment=text("comment"),
            decided_via=text("decided_via"),
            delivered_at=number("delivered_at"),
        )


@dataclass(frozen=True)
class CreatedRequest:
    """The request for a callback step, and the link reference if the mail has not gone out yet."""

    request: ApprovalRequest | None
    reference: str | None
    already_notified: bool
    stopped_before_creation: bool = False
    # The notifier gave up on an earlier (last) delivery and failed the step: nothing may be sent now.
    failed_before_creation: bool = False


@dataclass(frozen=True)
class DecisionResult:
    won: bool
    request: ApprovalRequest


def _request_pk(key: str) -> dict[str, Any]:
    return {"pk": {"S": f"request#{key}"}}


def _step_pk(token: str) -> dict[str, Any]:
    return {"pk": {"S": f"step#{token}"}}


class ApprovalStore:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name

    # --- creation (notifier) -------------------------------------------------------------------------

    def create(
        self,
        *,
        token: str,
        execution_arn: str,
        report_uri: str,
        summary: ReportSummary,
        now: int,
        expires_at: int,
    ) -> CreatedRequest:
        """Create the request for this callback step once; a redelivered message gets the same request back."""
        reference = new_reference()
        key = reference_key(reference)
        ttl = {"N": str(expires_at + RETENTION_AFTER_EXPIRY_SECONDS)}
        step_item = {
            **_step_pk(token),
            "kind": {"S": "step"},
            "request_key": {"S": key},
            "link_reference": {"S": reference},
            "created_at": {"N": str(now)},
            TTL_ATTRIBUTE: ttl,
        }
        request_item = {
            **_request_pk(key),
            "kind": {"S": "request"},
            "token": {"S": token},
            "execution_arn": {"S": execution_arn},
            "report_uri": {"S": report_uri},
            "summary": {"S": json.dumps(summary.as_item(), sort_keys=True)},
            "created_at": {"N": str(now)},
            "expires_at": {"N": str(expires_at)},
            "status": {"S": PENDING},
            "form_token": {"S": new_form_token()},
            "open_shard": {"S": OPEN_SHARD},
            "open_due": {"N": str(expires_at)},
            TTL_ATTRIBUTE: ttl,
        }
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": step_item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": request_item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return self._existing_for_step(token)
        return CreatedRequest(request=self.get_by_key(key), reference=reference, already_notified=False)

    def _existing_for_step(self, token: str) -> CreatedRequest:
        step = self.dynamodb.get_item(TableName=self.table_name, Key=_step_pk(token), ConsistentRead=True).get("Item")
        if step is None:
            # Only a reference collision (2^-256) or a deleted step item gets here: worth a retry.
            raise TransientError(f"approval request for callback token {token} could not be created; retrying")
        if "stopped_at" in step:
            return CreatedRequest(request=None, reference=None, already_notified=True, stopped_before_creation=True)
        if "failed_at" in step:
            return CreatedRequest(request=None, reference=None, already_notified=True, failed_before_creation=True)
        request = self.get_by_key(step["request_key"]["S"])
        reference = step.get("link_reference", {}).get("S")
        return CreatedRequest(request=request, reference=reference, already_notified=reference is None)

    def mark_notified(self, token: str, now: int) -> None:
        """The mail is out: forget the link itself; only its hash stays in the table."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=_step_pk(token),
            UpdateExpression="SET notified_at = :now REMOVE link_reference",
            ExpressionAttributeValues={":now": {"N": str(now)}},
        )

    def request_for_step(self, token: str) -> ApprovalRequest | None:
        step = self.dynamodb.get_item(TableName=self.table_name, Key=_step_pk(token), ConsistentRead=True).get("Item")
        if step is None or "request_key" not in step:
            return None
        return self.get_by_key(step["request_key"]["S"])

    def record_stop_before_creation(self, token: str, now: int, expires_ttl: int) -> bool:
        """A stop that overtook its start message: leave a marker so the late start creates nothing."""
        return self._close_step_before_creation(token, {"stopped_at": {"N": str(now)}}, expires_ttl)

    def record_failure_before_creation(self, token: str, now: int, expires_ttl: int, reason: str) -> bool:
        """The notifier gave up before any request existed: a copy of the message delivered later sends nothing."""
        marker = {"failed_at": {"N": str(now)}, "failure_reason": {"S": reason}}
        return self._close_step_before_creation(token, marker, expires_ttl)

    def _close_step_before_creation(self, token: str, marker: dict[str, Any], expires_ttl: int) -> bool:
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={
                    **_step_pk(token),
                    "kind": {"S": "step"},
                    **marker,
                    TTL_ATTRIBUTE: {"N": str(expires_ttl)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    # --- reading ---------------------------------------------------------------------------------------

    def get_by_key(self, key: str) -> ApprovalRequest | None:
        item = self.dynamodb.get_item(TableName=self.table_name, Key=_request_pk(key), ConsistentRead=True).get("Item")
        return ApprovalRequest.from_item(item) if item else None

    def get_by_reference(self, reference: str) -> ApprovalRequest | None:
        return self.get_by_key(reference_key(reference))

    def open_requests(self, due_by: int | None = None) -> Iterator[ApprovalRequest]:
        """Requests still pending, or decided but not yet reported to SageMaker (eventually consistent)."""
        condition = "open_shard = :shard"
        values: dict[str, Any] = {":shard": {"S": OPEN_SHARD}}
        if due_by is not None:
            condition += " AND open_due <= :due"
            values[":due"] = {"N": str(due_by)}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self.dynamodb.query(**request)
            for item in page.get("Items", []):
                yield ApprovalRequest.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- the single-use guard ----------------------------------------------------------------------------

    def decide(
        self,
        key: str,
        *,
        status: str,
        decided_by: str,
        comment: str,
        via: str,
        now: int,
        form_token: str | None = None,
        allow_expired: bool = False,
    ) -> DecisionResult:
        """Move a PENDING request to `status`, once. Whoever loses the race gets the winner's record back."""
        if status not in DECIDED_STATUSES:
            raise ValueError(f"unknown decision status {status!r}")
        condition = "#status = :pending"
        values: dict[str, Any] = {
            ":pending": {"S": PENDING},
            ":status": {"S": status},
            ":now": {"N": str(now)},
            ":by": {"S": decided_by},
            ":comment": {"S": comment},
            ":via": {"S": via},
        }
        if not allow_expired:
            condition += " AND expires_at > :now"
        if form_token is not None:
            condition += " AND form_token = :form_token"
            values[":form_token"] = {"S": form_token}
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=_request_pk(key),
                UpdateExpression=(
                    "SET #status = :status, decided_at = :now, decided_by = :by, #comment = :comment, "
                    "decided_via = :via, open_due = :now"
                ),
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeNames={"#status": "status", "#comment": "comment"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self.get_by_key(key)
            if current is None:
                raise LookupError(f"no approval request {key}") from error
            return DecisionResult(won=False, request=current)
        return DecisionResult(won=True, request=ApprovalRequest.from_item(response["Attributes"]))

    def mark_delivered(self, key: str, now: int) -> None:
        """SageMaker has the outcome: the request leaves the open index."""
        self.dynamodb.update_item(
            TableName=self.table_name,
            Key=_request_pk(key),
            UpdateExpression="SET delivered_at = :now REMOVE open_shard, open_due",
            ConditionExpression="#status <> :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":now": {"N": str(now)}, ":pending": {"S": PENDING}},
        )


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments matching the CDK table (cdk_constructs/approval_table.py), for tests and local mode."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "open_shard", "AttributeType": "S"},
            {"AttributeName": "open_due", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": "open_shard", "KeyType": "HASH"},
                    {"AttributeName": "open_due", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
