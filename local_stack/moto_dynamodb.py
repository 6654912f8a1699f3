"""DynamoDB in the moto server with DynamoDB's isolation and bounded cost.

Two problems of moto's DynamoDB once invocations run in parallel:

- Nothing is isolated: ``transact_write_items`` snapshots each table and, when the transaction
  fails, puts the snapshot back, wiping every write other requests made meanwhile. The
  middleware below serialises every DynamoDB request (a lock around moto's dispatch), which is
  what serializable isolation looks like from the outside.
- Every transaction deep-copies the whole table once per item it writes (10 items into a table
  of thousands: tens of thousands of item copies), which costs CPU linear in the table and grows
  the process by megabytes per upload. ``install_transaction_undo_log`` replaces that snapshot
  with an undo log of just the items the transaction touches (safe because of the lock).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class DynamoDBLock:
    """WSGI middleware: one DynamoDB request at a time (other services are not held up)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The whole response is produced inside the lock (moto answers in one piece).
            return list(self.app(environ, start_response))


_installed = False


def install_transaction_undo_log() -> None:
    """Make moto's transactions roll back through an undo log instead of table copies."""
    global _installed
    if _installed:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_deepcopy = copy.deepcopy

    class _CopyWithoutTables:
        """Stands in for the ``copy`` module inside moto.dynamodb.models: a Table "copy" is the
        table itself, so moto's own rollback becomes a no-op and ours restores the items."""

        @staticmethod
        def deepcopy(obj: Any, memo: dict[int, Any] | None = None) -> Any:
            return obj if isinstance(obj, Table) else real_deepcopy(obj, memo)

        copy = staticmethod(copy.copy)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo: dict[tuple[int, Any, Any], tuple[Table, Any, Any, Any]] = {}
        for entry in transact_items if isinstance(transact_items, list) else []:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.tables[op["TableName"]]
                key = op["Item"] if op_type == "Put" else op["Key"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.has_range_key else None
            except (KeyError, TypeError, AttributeError, StopIteration):
                continue  # moto reports the malformed item itself
            slot = (id(table), hash_value, range_value)
            if slot not in undo:
                current = table.get_item(hash_value, range_value)
                saved = real_deepcopy(current) if current is not None else None
                undo[slot] = (table, hash_value, range_value, saved)
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, saved in undo.values():
                if saved is None:
                    if table.get_item(hash_value, range_value) is not None:
                        table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = saved
                else:
                    table.items[hash_value] = saved
            raise

    models.copy = _CopyWithoutTables  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _installed = True
