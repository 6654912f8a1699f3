"""moto's DynamoDB as the local stack runs it: an undo log instead of table copies, one request
at a time."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_stack.moto_dynamodb import DynamoDBLock, install_transaction_undo_log

TABLE = "t"


@pytest.fixture
def ddb() -> Any:
    install_transaction_undo_log()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(50):
            client.put_item(TableName=TABLE, Item=_item(f"old{i}", n=i))
        yield client


def _item(pk: str, n: int = 0) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": "META"}, "n": {"N": str(n)}}


def _table() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[TABLE]


def _scan(client: Any) -> list[tuple[str, str]]:
    items = client.scan(TableName=TABLE)["Items"]
    return sorted((i["PK"]["S"], i["n"]["N"]) for i in items)


def test_a_cancelled_transaction_undoes_its_puts_updates_and_deletes(ddb: Any) -> None:
    before = _scan(ddb)
    table = _table()
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _item("new", 1)}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "old1"}, "SK": {"S": "META"}},
                        "UpdateExpression": "SET n = :v",
                        "ExpressionAttributeValues": {":v": {"N": "99"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": {"PK": {"S": "old2"}, "SK": {"S": "META"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "old3"}, "SK": {"S": "META"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    assert _scan(ddb) == before
    # The table was not replaced by a copy: nothing written elsewhere meanwhile can be lost.
    assert _table() is table


def test_a_committed_transaction_still_writes(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item("new", 1)}},
            {"Delete": {"TableName": TABLE, "Key": {"PK": {"S": "old0"}, "SK": {"S": "META"}}}},
        ]
    )
    got = dict(_scan(ddb))
    assert got["new"] == "1" and "old0" not in got and len(got) == 50


def test_no_table_copy_per_transaction(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    from moto.dynamodb.models.table import Table

    copied: list[Any] = []
    real = copy.deepcopy

    def counting(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            copied.append(obj)
        return real(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": TABLE, "Item": _item(f"n{i}")}} for i in range(10)]
    )
    assert copied == []


class _SpyLock:
    """A lock that says when a second caller is waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waiting = threading.Event()

    def __enter__(self) -> None:
        if self._lock.locked():
            self.waiting.set()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_dynamodb_requests_run_one_at_a_time_and_others_pass() -> None:
    inside: list[str] = []
    release = threading.Event()
    entered = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        inside.append(environ["name"])
        if environ["name"] == "first":
            entered.set()
            assert release.wait(10)
        inside.append("/" + environ["name"])
        start_response("200 OK", [])
        return [b"{}"]

    middleware = DynamoDBLock(app)
    middleware.lock = spy = _SpyLock()  # type: ignore[assignment]
    target = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}

    def call(name: str, **environ: str) -> None:
        middleware({"name": name, **environ}, lambda *a: None)

    first = threading.Thread(target=call, args=("first",), kwargs=target)
    first.start()
    assert entered.wait(10)
    call("sqs", HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage")  # not held up by the lock
    second = threading.Thread(target=call, args=("second",), kwargs=target)
    second.start()
    assert spy.waiting.wait(10)  # the second DynamoDB request waits for the first
    release.set()
    first.join(10)
    second.join(10)
    assert inside == ["first", "sqs", "/sqs", "/first", "second", "/second"]
