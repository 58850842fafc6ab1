"""Create the callback-token table on a DynamoDB endpoint, shaped like cdk_constructs/callback_table.py.

The local mode and the tests create it on the loopback moto server (local_mode.dynamodb_server);
tests/infra checks that this shape and the deployed table's agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline_callback.token_records import OPEN_INDEX_NAME, TOKEN_KEY, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_SCHEMA = [{"AttributeName": TOKEN_KEY, "KeyType": "HASH"}]
OPEN_INDEX_KEY_SCHEMA = [
    {"AttributeName": "open", "KeyType": "HASH"},
    {"AttributeName": "created_at", "KeyType": "RANGE"},
]

OPEN_INDEX: Any = {
    "IndexName": OPEN_INDEX_NAME,
    "KeySchema": OPEN_INDEX_KEY_SCHEMA,
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}


def create_token_table(dynamodb: DynamoDBClient, table_name: str) -> None:
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=KEY_SCHEMA,  # type: ignore[arg-type]
        AttributeDefinitions=[
            {"AttributeName": TOKEN_KEY, "AttributeType": "S"},
            {"AttributeName": "open", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[OPEN_INDEX],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
