"""Small helpers over the DynamoDB low-level client: marshalling and paging."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterator, List, Optional, Tuple

from chalicelib.adapters.aws import client


def _serializer():
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer():
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_from_dynamo_value(v) for v in value]
    return value


def marshal(item: Dict[str, Any]) -> Dict[str, Any]:
    serializer = _serializer()
    return {k: serializer.serialize(_to_dynamo_value(v)) for k, v in item.items() if v is not None}


def unmarshal(item: Dict[str, Any]) -> Dict[str, Any]:
    deserializer = _deserializer()
    return {k: _from_dynamo_value(deserializer.deserialize(v)) for k, v in item.items()}


def marshal_values(values: Dict[str, Any]) -> Dict[str, Any]:
    serializer = _serializer()
    return {k: serializer.serialize(_to_dynamo_value(v)) for k, v in values.items()}


def ddb():
    return client("dynamodb")


def query_all(**kwargs: Any) -> Iterator[Dict[str, Any]]:
    """Every item of a Query, following LastEvaluatedKey."""
    while True:
        page = ddb().query(**kwargs)
        for item in page.get("Items", []):
            yield unmarshal(item)
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_page(limit: int, start_key: Optional[Dict[str, Any]], **kwargs: Any) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """Up to ``limit`` items and the key to continue from (None at the end)."""
    items: List[Dict[str, Any]] = []
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    while len(items) < limit:
        kwargs["Limit"] = limit - len(items)
        page = ddb().query(**kwargs)
        items.extend(unmarshal(item) for item in page.get("Items", []))
        last = page.get("LastEvaluatedKey")
        if not last:
            return items, None
        kwargs["ExclusiveStartKey"] = last
    return items, kwargs["ExclusiveStartKey"]


def is_conditional_failure(err: Exception) -> bool:
    """A write refused by its condition (botocore's ClientError with that code)."""
    from botocore.exceptions import ClientError

    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException", "TransactionCanceledException")
