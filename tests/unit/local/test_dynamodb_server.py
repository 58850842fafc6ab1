"""The loopback DynamoDB server keeps real conditional-write semantics and stays on loopback."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_mode.dynamodb_server import loopback_dynamodb


def _client(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_given_a_record_when_written_again_conditionally_then_the_second_write_is_refused() -> None:
    with loopback_dynamodb() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        dynamodb = _client(server.endpoint_url)
        _create_table(dynamodb, "records")
        put = {
            "TableName": "records",
            "Item": {"pk": {"S": "token-1"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        dynamodb.put_item(**put)
        with pytest.raises(ClientError) as refused:
            dynamodb.put_item(**put)
        assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_given_nested_blocks_then_they_share_one_server_and_the_last_one_out_resets_it() -> None:
    with loopback_dynamodb() as outer:
        with loopback_dynamodb() as inner:
            assert inner == outer
            _create_table(_client(inner.endpoint_url), "shared")
        assert _client(outer.endpoint_url).list_tables()["TableNames"] == ["shared"]
    with loopback_dynamodb() as fresh:
        assert _client(fresh.endpoint_url).list_tables()["TableNames"] == []
        assert fresh.environment() == {"AWS_ENDPOINT_URL_DYNAMODB": fresh.endpoint_url}
