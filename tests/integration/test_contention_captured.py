"""The contention simulator's rules, and the bench's capture of what ingests write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench.contention import Rules, Txn
from bench.scale import capture_ingests, legacy_layout
from imgsvc import aws as aws_clients
from imgsvc import records, stats


def txn(*items: str, partition: str = "P", wcu: int = 2) -> Txn:
    return Txn(tuple((i, "X") for i in items), ((partition, wcu),))


def rules(**kw) -> Rules:
    base = {"work_seconds": 0.0, "retry_delay": lambda attempt, rng: 0.001}
    return Rules(**{**base, **kw})


@pytest.fixture
def captured():
    return capture_ingests(200, stats_shards=16, stats_slots=16, index_shards=8)


@pytest.mark.parametrize("layout", ["legacy", "sharded"])
def test_captured_transactions_are_what_the_readers_read(aws, captured, layout):
    # Run the captured (and, for the old design, remapped) transactions against moto: the
    # legacy mapping must be the layout imgsvc.stats and the listing still read.
    for batch in range(1):  # the files of the captured uploads, 50 a request as the API
        files = [
            {"filename": f"IMG_{n:05d}.jpg", "content_type": "image/jpeg"}
            for n in range(batch * 100, batch * 100 + 100)
        ]
        records.create_session(f"batch-{batch}", records.now_utc() + timedelta(minutes=1), [])
        records.add_files(f"batch-{batch}", files[:50])
        records.add_files(f"batch-{batch}", files[50:])
    for items in captured[:30]:
        items = legacy_layout(items) if layout == "legacy" else items
        for entry in items:
            (body,) = entry.values()
            body["TableName"] = "imgsvc-test"
        aws_clients.ddb_client().transact_write_items(TransactItems=items)
    s = stats.get_stats()
    assert s == stats.recount() and s["total_images"] == 30
    page, cursor = records.list_images(50, None)
    assert len(page) == 30 and cursor is None
    partitions = {i.get("GSI1PK") for i in aws.table.scan()["Items"] if "GSI1PK" in i}
    assert (partitions == {"IMAGES"}) == (layout == "legacy")
