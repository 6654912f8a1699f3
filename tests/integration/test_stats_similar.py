"""Stats from counters (equal to a recount), diff and similar search over the phash index."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from imgsvc import records, stats
from imgsvc.config import get_settings
from imgsvc.phash_index import CHUNKS, hamming, index_keys
from imgsvc.records import IngestSource
from imgsvc.similar import find_similar
from tests.conftest import api_event, call, load_handler
from tests.integration.test_records import meta, session


def ingest(n: int, upload: str = "u1", **kw) -> dict:
    session(upload, f"{n}.jpg")
    m = meta(n, **kw)
    return records.commit_ingest(m, IngestSource(upload, f"{n}.jpg"))[0]


def test_stats_empty_has_thirty_zero_days(aws):
    s = stats.get_stats()
    assert len(s["uploads_per_day"]) == 30
    assert set(s["uploads_per_day"].values()) == {0}
    assert list(s["uploads_per_day"])[-1] == records.now_utc().date().isoformat()
    assert s == stats.recount()
    assert s["most_popular_format"] is None and s["total_images"] == 0


def test_stats_equal_recount_after_uploads_duplicates_and_deletes(aws):
    cams = ["Canon - A", "SONY - B", "Google - Pixel 6a", None]
    for i in range(30):
        session(f"u{i}", "x.jpg", "y.jpg")
        m = meta(i, "JPEG" if i % 3 else "PNG", cams[i % 4])
        records.commit_ingest(m, IngestSource(f"u{i}", "x.jpg"))
        if i % 5 == 0:  # the same content again
            records.commit_ingest(m, IngestSource(f"u{i}", "y.jpg"))
    for i in range(0, 30, 7):
        records.delete_image(meta(i)["sha256"])
    s = stats.get_stats()
    assert s == stats.recount()
    today = records.now_utc().date().isoformat()
    assert s["uploads_per_day"][today] == 36  # 30 uploads + 6 duplicates; deletes stay history
    assert s["total_images"] == 25
    assert s["formats"] == {"JPEG": 17, "PNG": 8}
    assert s["most_popular_format"] == "JPEG"
    assert s["top_camera_models"][0] in {"Canon - A", "SONY - B", "Google - Pixel 6a"}


def test_stats_read_counts_do_not_grow_with_images(aws):
    from imgsvc import aws as aws_clients

    def requests_for_stats() -> int:
        calls: list[str] = []
        client = aws_clients.ddb_client()
        count = lambda event_name, **_: calls.append(event_name)  # noqa: E731
        client.meta.events.register("before-call.dynamodb.*", count)
        try:
            stats.get_stats()
        finally:
            client.meta.events.unregister("before-call.dynamodb.*", count)
        return len(calls)

    for i in range(5):
        ingest(i, upload=f"a{i}")
    few = requests_for_stats()
    for i in range(5, 40):
        ingest(i, upload=f"a{i}")
    # One query per counter shard, plus the legacy layout: 4 batch gets (301 keys) + 2 queries.
    shards = get_settings().stats_shards
    assert requests_for_stats() == few == shards + 6


def test_stats_handler_shape(aws):
    ingest(1)
    status, body, _ = call(load_handler("stats"), api_event("GET", "/stats"))
    assert status == 200
    assert body["total_images"] == 1 and body["formats"] == {"JPEG": 1}
    assert body["top_camera_models"] == ["Canon - EOS"]


def test_day_counter_uses_yesterdays_shards_too(aws, monkeypatch):
    ingest(1)
    tomorrow = records.now_utc().date() + timedelta(days=1)
    s = stats.get_stats(today=tomorrow)
    assert sum(s["uploads_per_day"].values()) == 1
    assert s["uploads_per_day"][tomorrow.isoformat()] == 0


def _hash_with_distance(base: int, bits: list[int]) -> str:
    for b in bits:
        base ^= 1 << b
    return f"{base:016x}"


def _ingest_hash(n: int, phash: str) -> str:
    session(f"h{n}", "f.jpg")
    m = meta(n)
    m["phash"] = phash
    return records.commit_ingest(m, IngestSource(f"h{n}", "f.jpg"))[0]["image_id"]


def test_similar_finds_exactly_the_neighbours_and_reads_few_items(aws):
    rng = random.Random(7)
    base = rng.getrandbits(64)
    source = _ingest_hash(0, f"{base:016x}")
    expected = {}
    for n in range(1, 9):  # neighbours at distances 1..8, bits spread over all chunks
        h = _hash_with_distance(base, rng.sample(range(64), n))
        expected[_ingest_hash(n, h)] = n
    far = [_ingest_hash(100 + n, f"{rng.getrandbits(64):016x}") for n in range(40)]
    result = find_similar(source, max_distance=8, limit=50)
    got = {m["image_id"]: m["distance"] for m in result.matches}
    truth = {i: d for i, d in expected.items() if d <= 8}
    truth.update({i: hamming(records.get_image(i)["phash"], f"{base:016x}") for i in far})
    truth = {i: d for i, d in truth.items() if d <= 8}
    assert got == truth
    assert [m["distance"] for m in result.matches] == sorted(got.values())
    # It reads exactly the members of the 9 buckets of the source's chunks, no more: the
    # neighbours (in several each) and the few far images that share a chunk by chance.
    wanted = set(index_keys(f"{base:016x}"))
    every = [source, *expected, *far]
    members = {i: set(index_keys(records.get_image(i)["phash"])) & wanted for i in every}
    assert result.items_read == sum(len(m) for m in members.values())
    assert sum(len(members[i]) for i in far) <= 3  # of 40 unrelated images
    assert find_similar(source, max_distance=3, limit=50).matches == [
        m for m in result.matches if m["distance"] <= 3
    ]


def test_similar_after_delete_forgets_the_image(aws):
    a = _ingest_hash(1, "00000000000000ff")
    b = _ingest_hash(2, "00000000000000fe")
    assert [m["image_id"] for m in find_similar(a, 8, 10).matches] == [b]
    records.delete_image(b)
    assert find_similar(a, 8, 10).matches == []


def test_similar_and_diff_handlers(aws):
    a = _ingest_hash(1, "00000000000000ff")
    b = _ingest_hash(2, "000000000000000f")
    status, body, _ = call(
        load_handler("similar"),
        api_event("GET", f"/images/{a}/similar", query={"max_distance": "4"}),
    )
    assert status == 200 and [r["image_id"] for r in body["results"]] == [b]
    assert body["results"][0]["distance"] == 4
    status, body, _ = call(
        load_handler("similar"),
        api_event("GET", f"/images/{a}/similar", query={"max_distance": "9"}),
    )
    assert (
        status == 400
        and f"max_distance: Input should be less than or equal to {CHUNKS - 1}" in (body["message"])
    )
    diff = load_handler("diff")
    status, body, _ = call(diff, api_event("GET", f"/images/{a}/diff/{b}"))
    assert status == 200
    assert body == {
        "algorithm": "phash",
        "distance": 4,
        "similar": True,
        "threshold": 10,
        "hashes": {a: "00000000000000ff", b: "000000000000000f"},
    }
    status, body, _ = call(
        diff, api_event("GET", f"/images/{a}/diff/{b}", query={"threshold": "3"})
    )
    assert body["similar"] is False
    status, body, _ = call(diff, api_event("GET", f"/images/{a}/diff/{'0' * 64}"))
    assert status == 404 and body["code"] == "not_found"
    status, body, _ = call(diff, api_event("GET", f"/images/{a}/diff/nothex"))
    assert status == 400 and "64 lowercase hex" in body["message"]
    status, body, _ = call(
        diff, api_event("GET", f"/images/{a}/diff/{b}", query={"threshold": "65"})
    )
    assert status == 400


@pytest.mark.parametrize("bad", ["", "0x00000000000000", "g" * 16, "1" * 17, None])
def test_hamming_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        hamming("0" * 16, bad)
