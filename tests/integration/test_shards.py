"""Sharded counters and listings: merged reads, small cursors, and tables written before."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from imgsvc import cache, records, shards, stats
from imgsvc.config import get_settings
from imgsvc.errors import BadRequest
from imgsvc.records import IngestSource
from tests.integration.test_records import counter_items, meta, session

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ingest_at(monkeypatch, n: int, when: datetime, **kw) -> dict:
    monkeypatch.setattr(records, "now_utc", lambda: when)
    session(f"s{n}", "f.jpg")
    return records.commit_ingest(meta(n, **kw), IngestSource(f"s{n}", "f.jpg"))[0]


def page_all(limit: int) -> tuple[list[str], list[int], list[str]]:
    seen, sizes, cursors, cursor = [], [], [], None
    while True:
        page, cursor = records.list_images(limit, cursor)
        seen += [i["image_id"] for i in page]
        sizes.append(len(page))
        if cursor is None:
            return seen, sizes, cursors
        cursors.append(cursor)


@pytest.mark.parametrize("limit", [1, 3, 7, 40])
def test_paging_over_shards_with_ties_lists_each_image_once_newest_first(aws, monkeypatch, limit):
    monkeypatch.setenv("INDEX_SHARDS", "4")
    # 24 images in 6 instants: four share each created_at, so ties cross shard boundaries.
    images = [ingest_at(monkeypatch, n, T0 + timedelta(seconds=n // 4)) for n in range(24)]
    partitions = {
        aws.table.get_item(Key={"PK": f"IMAGE#{i['image_id']}", "SK": "META"})["Item"]["GSI1PK"]
        for i in images
    }
    assert partitions == {"IMAGES#0", "IMAGES#1", "IMAGES#2", "IMAGES#3"}
    expected = [
        i["image_id"] for i in sorted(images, key=lambda i: (i["created_at"], i["image_id"]))
    ][::-1]
    seen, sizes, cursors = page_all(limit)
    assert seen == expected  # each exactly once, newest first, ties by id
    assert all(s == limit for s in sizes[:-1]) and 0 < sizes[-1] <= limit  # no empty last page
    assert all(len(c) < 130 for c in cursors)  # one boundary, whatever the shard count


def test_a_page_reads_about_its_share_of_each_partition(aws, monkeypatch):
    monkeypatch.setenv("INDEX_SHARDS", "4")
    for n in range(80):
        ingest_at(monkeypatch, n, T0 + timedelta(seconds=n))
    read = []
    table = records.aws.table()
    query = table.query

    def counting(**kwargs):
        page = query(**kwargs)
        read.append(len(page["Items"]))
        return page

    monkeypatch.setattr(table, "query", counting)
    monkeypatch.setattr(records.aws, "table", lambda: table)
    page, _ = records.list_images(10, None)
    assert [i["image_id"] for i in page] == [meta(n)["sha256"] for n in range(79, 69, -1)]
    # 5 partitions (4 shards + legacy): pages of 4 first, a second page where a shard needs it;
    # reading limit + 1 from every partition would be 44 items.
    assert len(read) <= 8 and sum(read) <= 28, read


def test_cursor_is_stable_while_images_arrive(aws, monkeypatch):
    for n in range(6):
        ingest_at(monkeypatch, n, T0 + timedelta(seconds=n))
    first, cursor = records.list_images(3, None)
    ingest_at(monkeypatch, 50, T0 + timedelta(seconds=60))  # newer: not on later pages
    rest, end = records.list_images(10, cursor)
    assert end is None
    assert [i["image_id"] for i in first + rest] == [meta(n)["sha256"] for n in range(5, -1, -1)]


def legacy_ingest(table, n: int, when: datetime, fmt: str = "JPEG", camera: str | None = None):
    """The items the unsharded layout wrote for one new image (see the table design before)."""
    m = meta(n, fmt, camera)
    created = records.iso(when)
    table.put_item(
        Item={
            **{k: v for k, v in m.items()},
            "PK": f"IMAGE#{m['sha256']}",
            "SK": "META",
            "GSI1PK": "IMAGES",
            "GSI1SK": f"{created}#{m['sha256']}",
            "image_id": m["sha256"],
            "created_at": created,
        }
    )
    table.put_item(
        Item={
            "PK": f"UPLOAD#legacy{n}",
            "SK": "FILE#f.jpg",
            "status": "done",
            "image_id": m["sha256"],
            "duplicate": False,
            "day": f"{when:%Y-%m-%d}",
        }
    )
    counters = [(f"STATS#DAY#{when:%Y-%m-%d}", f"SHARD#{n % 10}"), ("STATS#TOTAL", "TOTAL")]
    counters.append(("STATS#FORMAT", fmt))
    if camera:
        counters.append(("STATS#CAMERA", camera))
    for pk, sk in counters:
        table.update_item(
            Key={"PK": pk, "SK": sk},
            UpdateExpression="ADD #c :one",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":one": 1},
        )
    return m["sha256"]


def test_a_table_written_before_sharding_keeps_working(aws, monkeypatch):
    now = records.now_utc()
    old = [
        legacy_ingest(aws.table, n, now - timedelta(minutes=10 - n), camera="Old - Cam")
        for n in range(4)
    ]
    new = [
        ingest_at(monkeypatch, n, now + timedelta(seconds=n), camera="Old - Cam")["image_id"]
        for n in range(10, 14)
    ]
    assert stats.get_stats() == stats.recount()
    assert stats.get_stats()["total_images"] == 8
    assert stats.get_stats()["top_camera_models"] == ["Old - Cam"]
    seen, _, _ = page_all(3)
    assert seen == new[::-1] + old[::-1]
    # A legacy image's delete decrements its new-layout shard: the sum stays exact.
    records.delete_image(old[0])
    records.delete_image(new[0])
    s = stats.get_stats()
    assert s == stats.recount() and s["total_images"] == 6
    assert s["uploads_per_day"][now.date().isoformat()] == 8  # uploads are history
    assert page_all(2)[0] == new[:0:-1] + old[:0:-1]


def test_cursor_from_before_sharding_still_pages(aws, monkeypatch):
    for n in range(5):
        ingest_at(monkeypatch, n, T0 + timedelta(seconds=n))
    last = meta(3)["sha256"]
    old_key = {
        "PK": f"IMAGE#{last}",
        "SK": "META",
        "GSI1PK": "IMAGES",
        "GSI1SK": f"{records.iso(T0 + timedelta(seconds=3))}#{last}",
    }
    old_cursor = base64.urlsafe_b64encode(json.dumps(old_key).encode()).decode().rstrip("=")
    page, cursor = records.list_images(10, old_cursor)
    assert [i["image_id"] for i in page] == [
        meta(2)["sha256"],
        meta(1)["sha256"],
        meta(0)["sha256"],
    ]
    assert cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00.000000Z#nothex").decode(),
        base64.urlsafe_b64encode(json.dumps({"GSI1SK": 5}).encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_malformed_cursor_is_a_bad_request(aws, cursor):
    with pytest.raises(BadRequest, match="malformed cursor"):
        records.list_images(3, cursor)


def test_counters_are_spread_and_zero_cameras_removed(aws, monkeypatch):
    monkeypatch.setenv("STATS_SHARDS", "4")
    ids = [ingest_at(monkeypatch, n, T0, camera=f"Cam - {n % 2}")["image_id"] for n in range(12)]
    items = counter_items(aws.table)
    assert {i["PK"] for i in items} == {f"STATS#SHARD#{k}" for k in range(4)}
    for image_id in ids:
        shard, slot = records.stats_shard(image_id)
        total = aws.table.get_item(Key={"PK": f"STATS#SHARD#{shard}", "SK": f"TOTAL#{slot}"})
        assert int(total["Item"]["count"]) == [records.stats_shard(i) for i in ids].count(
            (shard, slot)
        )
    assert len({records.stats_shard(i) for i in ids}) > 4  # slots: more items than partitions
    for image_id in ids:
        records.delete_image(image_id)
    left = {i["SK"] for i in counter_items(aws.table)}
    assert not any(sk.startswith("~CAMERA#") for sk in left)
    assert stats.get_stats()["total_images"] == 0
    assert stats.get_stats(T0.date()) == stats.recount(T0.date())


def test_stats_reads_a_bounded_number_of_camera_names(aws, monkeypatch):
    monkeypatch.setenv("STATS_SHARDS", "1")
    monkeypatch.setenv("STATS_SLOTS", "1")
    monkeypatch.setattr(stats, "CAMERA_NAMES_PER_SHARD", 3)
    monkeypatch.setattr(stats, "_BEFORE_CAMERAS", 3)  # one day, one format, the total
    now = records.now_utc()
    for n in range(8):
        ingest_at(monkeypatch, n, now, camera=f"Junk - {n}")
    read = []
    query_page = stats._query_page

    def counting(*args, **kwargs):
        items = query_page(*args, **kwargs)
        read.extend(i["SK"] for i in items if i["SK"].startswith("~CAMERA#"))
        return items

    monkeypatch.setattr(stats, "_query_page", counting)
    s = stats.get_stats()
    assert len(read) == 3  # of 8 names: the read stops at the bound
    monkeypatch.setattr(stats, "_BEFORE_CAMERAS", 40)  # room to spare: still 3 names used
    assert stats.get_stats() == s
    assert s["top_camera_models"] == ["Junk - 0", "Junk - 1", "Junk - 2"]
    assert s["total_images"] == 8


def test_history_merges_cache_shards_and_the_legacy_partition(aws, monkeypatch):
    monkeypatch.setenv("INDEX_SHARDS", "3")
    analysis = cache.AnalysisCache()
    clock = iter(T0 + timedelta(seconds=n) for n in range(100))

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return next(clock)

    monkeypatch.setattr(cache, "datetime", Clock)
    monkeypatch.setattr(cache.time, "time", lambda: T0.timestamp())
    urls = [f"https://example.test/{n}.jpg" for n in range(9)]
    for url in urls[:3]:  # written before sharding
        analysis.put(url, {"ok": True})
        digest = cache.url_key(url)
        aws.table.update_item(
            Key={"PK": f"CACHE#{digest}", "SK": "ANALYSIS"},
            UpdateExpression="SET GSI1PK = :legacy",
            ExpressionAttributeValues={":legacy": "CACHE"},
        )
    for url in urls[3:]:
        analysis.put(url, {"ok": True})
    partitions = {i.get("GSI1PK") for i in aws.table.scan()["Items"]}
    assert "CACHE" in partitions and len(partitions - {"CACHE"}) > 1
    assert cache.cached_urls(limit=100) == urls[::-1]
    assert cache.cached_urls(limit=4) == urls[:4:-1]


def test_shard_of_is_fixed_per_id_and_in_range():
    ids = [meta(n)["sha256"] for n in range(400)]
    got = [shards.shard_of(i, 8) for i in ids]
    assert got == [shards.shard_of(i, 8) for i in ids]
    assert set(got) == set(range(8))
    assert shards.index_partitions("IMAGES", 2) == ["IMAGES#0", "IMAGES#1", "IMAGES"]
    assert get_settings().index_shards >= 1
