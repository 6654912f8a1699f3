"""Ingest and delete transactions: idempotent under redelivery, exact counters."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from imgsvc import records
from imgsvc.errors import Conflict, Gone, NotFound
from imgsvc.phash_index import index_keys
from imgsvc.records import IngestSource


def meta(n: int, fmt: str = "JPEG", camera: str | None = "Canon - EOS") -> dict:
    sha = hashlib.sha256(f"image-{n}".encode()).hexdigest()
    return {
        "sha256": sha,
        "sha1": hashlib.sha1(f"image-{n}".encode()).hexdigest(),
        "format": fmt,
        "width": 10,
        "height": 20,
        "mode": "RGB",
        "bytes": 1234,
        "make": camera.split(" - ")[0] if camera else None,
        "model": camera.split(" - ")[1] if camera else None,
        "camera": camera,
        "orientation": 1,
        "taken_at": None,
        "display_width": 10,
        "display_height": 20,
        "phash": f"{n:016x}",
        "animated": False,
        "frames": 1,
    }


def session(upload_id: str, *names: str) -> None:
    files = [{"filename": n, "content_type": "image/jpeg", "size": None} for n in names]
    records.create_session(upload_id, records.now_utc() + timedelta(seconds=60), files)


def counters(table) -> dict:
    """Counter values summed over shards, named KIND:NAME (DAY summed over days)."""
    out: dict[str, int] = {}
    for item in table.scan()["Items"]:
        if not item["PK"].startswith("STATS#"):
            continue
        if item["PK"].startswith("STATS#SHARD#"):
            counter = item["SK"].rpartition("#")[0]  # without the slot
            kind, _, name = counter.lstrip("~").partition("#")
            key = "DAY" if kind == "DAY" else f"{kind}:{name or kind}"
        else:  # the unsharded layout of before
            kind = item["PK"].split("#")[1]
            key = "DAY" if kind == "DAY" else f"{kind}:{item['SK']}"
        out[key] = out.get(key, 0) + int(item["count"])
    return out


def counter_items(table) -> list[dict]:
    return [i for i in table.scan()["Items"] if i["PK"].startswith("STATS#")]


def test_new_image_writes_item_file_counters_and_index(aws):
    session("u1", "a.jpg")
    image, duplicate = records.commit_ingest(meta(1), IngestSource("u1", "a.jpg"))
    assert duplicate is False
    assert image["image_id"] == meta(1)["sha256"]
    assert records.get_image(image["image_id"])["camera"] == "Canon - EOS"
    state = records.get_upload_file("u1", "a.jpg")
    assert state["status"] == "done" and state["image_id"] == image["image_id"]
    assert counters(aws.table) == {
        "DAY": 1,
        "TOTAL:TOTAL": 1,
        "FORMAT:JPEG": 1,
        "CAMERA:Canon - EOS": 1,
    }
    for pk in index_keys(meta(1)["phash"]):
        assert aws.table.get_item(Key={"PK": pk, "SK": image["image_id"]}).get("Item")


def test_redelivery_three_times_changes_nothing(aws):
    session("u1", "a.jpg")
    source = IngestSource("u1", "a.jpg")
    first = records.commit_ingest(meta(1), source)
    snapshot = sorted(map(str, aws.table.scan()["Items"]))
    for _ in range(2):
        assert records.commit_ingest(meta(1), source) == (first[0], False)
    assert sorted(map(str, aws.table.scan()["Items"])) == snapshot


def test_same_content_twice_is_one_image_and_a_duplicate(aws):
    session("u1", "a.jpg", "b.jpg")
    records.commit_ingest(meta(1), IngestSource("u1", "a.jpg"))
    _, duplicate = records.commit_ingest(meta(1), IngestSource("u1", "b.jpg"))
    assert duplicate is True
    assert records.get_upload_file("u1", "b.jpg")["duplicate"] is True
    c = counters(aws.table)
    assert c["DAY"] == 2  # two uploads
    assert c["TOTAL:TOTAL"] == 1 and c["FORMAT:JPEG"] == 1  # one image


def test_interleaved_deliveries_of_duplicates_count_once(aws):
    # Real concurrency is DynamoDB's job (serializable transactions); moto's transactions are
    # not isolated across threads, so this replays the interleavings deterministically.
    session("u1", *[f"f{i}.jpg" for i in range(10)])
    for _ in range(3):
        for i in range(10):
            records.commit_ingest(meta(i % 5), IngestSource("u1", f"f{i}.jpg"))
    c = counters(aws.table)
    assert c["DAY"] == 10 and c["TOTAL:TOTAL"] == 5 and c["FORMAT:JPEG"] == 5
    dup = [records.get_upload_file("u1", f"f{i}.jpg")["duplicate"] for i in range(10)]
    assert dup == [False] * 5 + [True] * 5


def test_reject_only_from_pending(aws):
    session("u1", "bad.jpg", "good.jpg")
    assert records.reject_upload_file(IngestSource("u1", "bad.jpg"), "not an image") is True
    assert records.reject_upload_file(IngestSource("u1", "bad.jpg"), "again") is False
    assert records.get_upload_file("u1", "bad.jpg")["error"] == "not an image"
    records.commit_ingest(meta(2), IngestSource("u1", "good.jpg"))
    assert records.reject_upload_file(IngestSource("u1", "good.jpg"), "late") is False
    assert records.get_upload_file("u1", "good.jpg")["status"] == "done"


def test_direct_ingest_twice_with_same_upload_id_answers_the_first(aws):
    # A direct upload's id is its own (random, or its Idempotency-Key's): a second commit
    # under it is a retry of the same request, which committed already.
    source = IngestSource("direct-1", "x.png", presigned=False)
    first, _ = records.commit_ingest(meta(3, "PNG", None), source)
    assert records.commit_ingest(meta(3, "PNG", None), source) == (first, False)
    assert counters(aws.table)["DAY"] == 1 and counters(aws.table)["TOTAL:TOTAL"] == 1


def test_delete_takes_image_out_of_counts_but_keeps_history(aws):
    session("u1", "a.jpg", "b.jpg")
    records.commit_ingest(meta(1), IngestSource("u1", "a.jpg"))
    records.commit_ingest(meta(2, "PNG", None), IngestSource("u1", "b.jpg"))
    records.delete_image(meta(1)["sha256"])
    c = counters(aws.table)
    assert c == {
        "DAY": 2,
        "TOTAL:TOTAL": 1,
        "FORMAT:JPEG": 0,
        "FORMAT:PNG": 1,
    }  # the camera counter that reached zero is removed
    assert not any(
        i["PK"].startswith("PHASH#") and i["SK"] == meta(1)["sha256"]
        for i in aws.table.scan()["Items"]
    )
    with pytest.raises(NotFound):
        records.get_image(meta(1)["sha256"])
    with pytest.raises(NotFound):
        records.delete_image(meta(1)["sha256"])


def test_upload_after_delete_creates_the_image_again(aws):
    session("u1", "a.jpg", "b.jpg")
    records.commit_ingest(meta(1), IngestSource("u1", "a.jpg"))
    records.delete_image(meta(1)["sha256"])
    image, duplicate = records.commit_ingest(meta(1), IngestSource("u1", "b.jpg"))
    assert duplicate is False and records.get_image(image["image_id"])
    assert counters(aws.table)["TOTAL:TOTAL"] == 1


def test_list_images_pages_newest_first(aws):
    session("u1", *[f"{i}.jpg" for i in range(7)])
    ids = [
        records.commit_ingest(meta(i), IngestSource("u1", f"{i}.jpg"))[0]["image_id"]
        for i in range(7)
    ]
    seen, cursor = [], None
    while True:
        page, cursor = records.list_images(3, cursor)
        seen += [i["image_id"] for i in page]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_add_files_to_expired_or_unknown_session(aws):
    records.create_session("old", records.now_utc() - timedelta(seconds=1), [])
    with pytest.raises(Gone):
        records.add_files("old", [{"filename": "a.jpg", "content_type": "image/jpeg"}])
    with pytest.raises(NotFound):
        records.add_files("nope", [{"filename": "a.jpg", "content_type": "image/jpeg"}])


def test_add_files_refuses_a_taken_filename(aws):
    session("u1", "a.jpg")
    with pytest.raises(Conflict, match=r"a\.jpg"):
        records.add_files("u1", [{"filename": "a.jpg", "content_type": "image/jpeg"}])
    records.add_files("u1", [{"filename": "b.jpg", "content_type": "image/jpeg"}])
    _, files = records.get_session("u1")
    assert sorted(f["filename"] for f in files) == ["a.jpg", "b.jpg"]
