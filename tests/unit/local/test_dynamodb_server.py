"""The loopback DynamoDB server keeps real conditional-write semantics and stays on loopback."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from local_mode.dynamodb_server import loopback_dynamodb


def _client(endpoint_url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_given_a_record_when_written_again_conditionally_then_the_second_write_is_refused() -> None:
    with loopback_dynamodb() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        dynamodb = _client(server.endpoint_url)
        dynamodb.create_table(
            TableName="records",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        put = {
            "TableName": "records",
            "Item": {"pk": {"S": "token-1"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        dynamodb.put_item(**put)
        with pytest.raises(ClientError) as refused:
            dynamodb.put_item(**put)
        assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_given_two_servers_then_each_has_its_own_port_and_tables() -> None:
    with loopback_dynamodb() as first, loopback_dynamodb() as second:
        assert first.endpoint_url != second.endpoint_url
        assert second.environment() == {"AWS_ENDPOINT_URL_DYNAMODB": second.endpoint_url}
