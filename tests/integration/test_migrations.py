"""The migration mechanism on moto: display-phash moves hashes and index items once, skips
deleted images, reports partial batch failures; the command pages, resumes and restarts."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from PIL import Image, ImageOps

from imgsvc import migrations, records, storage
from imgsvc.ingest import ingest_bytes
from imgsvc.phash import display_phash_hex, phash_hex
from imgsvc.phash_index import index_keys
from imgsvc.similar import find_similar
from tests.conftest import PHOTOS, load_handler
from tests.integration.test_records import meta

SIDEWAYS = PHOTOS / "coffee_iphone_rot6.jpg"
DISPLAY = migrations.get("display-phash")


def stored_pixels_hash() -> str:
    """The hash images got before: of the stored pixels, orientation ignored."""
    with Image.open(SIDEWAYS) as im:
        return phash_hex(im)


def displayed_hash() -> str:
    with Image.open(SIDEWAYS) as im:
        return display_phash_hex(im, 6)


def upright_copy() -> bytes:
    """The same picture stored upright (no orientation tag): its twin as displayed."""
    with Image.open(SIDEWAYS) as im:
        out = io.BytesIO()
        ImageOps.exif_transpose(im).save(out, "JPEG", quality=95)
        return out.getvalue()


def make_stale(table: Any, image_id: str, old: str) -> None:
    """What a table written before display hashes holds: the old hash and its index items."""
    current = table.get_item(Key={"PK": f"IMAGE#{image_id}", "SK": "META"})["Item"]["phash"]
    for pk in index_keys(current):
        table.delete_item(Key={"PK": pk, "SK": image_id})
    for pk in index_keys(old):
        table.put_item(Item={"PK": pk, "SK": image_id, "phash": old})
    table.update_item(
        Key={"PK": f"IMAGE#{image_id}", "SK": "META"},
        UpdateExpression="SET phash = :p REMOVE migrations",  # written before: no marks
        ExpressionAttributeValues={":p": old},
    )


def unmark(table: Any, image_id: str) -> None:
    """As an image ingested before migrations were recorded (ingest marks new ones)."""
    table.update_item(
        Key={"PK": f"IMAGE#{image_id}", "SK": "META"}, UpdateExpression="REMOVE migrations"
    )


def index_of(table: Any, image_id: str) -> dict[str, str]:
    """PK -> stored hash of every phash index item of an image."""
    items = table.scan()["Items"]
    return {
        i["PK"]: i["phash"] for i in items if i["PK"].startswith("PHASH#") and i["SK"] == image_id
    }


def seed_stale(table: Any) -> tuple[str, str]:
    """The sideways photo with its old hash, and its upright twin (current hash)."""
    sideways = ingest_bytes(SIDEWAYS.read_bytes(), filename="coffee.jpg")[0]["image_id"]
    twin = ingest_bytes(upright_copy(), filename="upright.jpg")[0]["image_id"]
    make_stale(table, sideways, stored_pixels_hash())
    return sideways, twin


def test_the_fixture_is_a_real_migration() -> None:
    """Old and new hashes differ by far more than similar's reach: the test below can fail."""
    from imgsvc.phash_index import MAX_DISTANCE, hamming

    assert hamming(stored_pixels_hash(), displayed_hash()) > MAX_DISTANCE
    twin = display_phash_hex(Image.open(io.BytesIO(upright_copy())), None)
    assert hamming(twin, displayed_hash()) <= 2
    assert set(index_keys(stored_pixels_hash())) - set(index_keys(displayed_hash()))


def test_display_phash_moves_the_hash_and_the_index(aws) -> None:
    sideways, twin = seed_stale(aws.table)
    old, new = stored_pixels_hash(), displayed_hash()
    assert sideways not in {m["image_id"] for m in find_similar(twin, 8, 20).matches}

    assert migrations.run_one(DISPLAY, sideways) == "changed"

    item = aws.table.get_item(Key={"PK": f"IMAGE#{sideways}", "SK": "META"})["Item"]
    assert item["phash"] == new
    assert item["migrations"] == {"display-phash@1"}
    assert "migrations" not in records.get_image(sideways)  # not part of the API's view
    # Every new chunk holds the new full hash (similar reads it); no old-only chunk is left.
    assert index_of(aws.table, sideways) == dict.fromkeys(index_keys(new), new)
    found = {m["image_id"]: m["distance"] for m in find_similar(twin, 8, 20).matches}
    assert found.get(sideways, 99) <= 2
    assert twin in {m["image_id"] for m in find_similar(sideways, 8, 20).matches}
    # Under the chunks of its old hash that changed, it is gone.
    for pk in set(index_keys(old)) - set(index_keys(new)):
        assert aws.table.get_item(Key={"PK": pk, "SK": sideways}).get("Item") is None


def test_a_second_run_changes_nothing(aws) -> None:
    sideways, twin = seed_stale(aws.table)
    assert migrations.run_one(DISPLAY, sideways) == "changed"
    before = aws.table.scan()["Items"]
    assert migrations.run_one(DISPLAY, sideways) == "skipped"
    assert aws.table.scan()["Items"] == before
    # An image that has the display hash already is marked and otherwise left alone.
    unmark(aws.table, twin)
    index = index_of(aws.table, twin)
    assert migrations.run_one(DISPLAY, twin) == "unchanged"
    assert index_of(aws.table, twin) == index
    assert aws.table.get_item(Key={"PK": f"IMAGE#{twin}", "SK": "META"})["Item"]["migrations"] == {
        "display-phash@1"
    }


def _traces(table: Any, image_id: str) -> list[dict[str, Any]]:
    return [
        i for i in table.scan()["Items"] if i["SK"] == image_id or i["PK"] == f"IMAGE#{image_id}"
    ]


def test_a_deleted_image_is_skipped(aws) -> None:
    sideways, _ = seed_stale(aws.table)
    records.delete_image(sideways, lambda: storage.delete_object(storage.image_key(sideways)))
    assert migrations.run_one(DISPLAY, sideways) == "missing"
    assert _traces(aws.table, sideways) == []


def test_an_image_deleted_during_the_migration_is_not_resurrected(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sideways, _ = seed_stale(aws.table)
    read = storage.read_image

    def read_then_delete(image_id: str) -> bytes | None:
        data = read(image_id)  # the migration has the bytes; the delete wins the commit
        records.delete_image(image_id, lambda: storage.delete_object(storage.image_key(image_id)))
        return data

    monkeypatch.setattr(storage, "read_image", read_then_delete)
    assert migrations.run_one(DISPLAY, sideways) == "missing"
    assert _traces(aws.table, sideways) == []


def _sqs_event(*messages: tuple[dict[str, Any], int]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(count), "SentTimestamp": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-migration-queue",
                "awsRegion": "us-east-1",
            }
            for n, (body, count) in enumerate(messages)
        ]
    }


def test_the_function_reports_partial_batch_failures_and_counts_once(aws, context) -> None:
    handler = load_handler("migrate")
    sideways, twin = seed_stale(aws.table)
    other = (PHOTOS / "chelsea_canon.jpg").read_bytes()
    broken = ingest_bytes(other, filename="b.jpg")[0]["image_id"]
    storage.delete_object(storage.image_key(broken))  # a record without its object: fails
    unmark(aws.table, twin)
    unmark(aws.table, broken)
    progress, _ = migrations.start_run(DISPLAY)
    run = progress["run_id"]
    migrations.record_page("display-phash", run, 3, None)
    good = migrations.message(DISPLAY, run, [sideways, twin])
    bad = migrations.message(DISPLAY, run, [broken])

    response = handler.lambda_handler(_sqs_event((good, 1), (bad, 1)), context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    progress = migrations.get_progress("display-phash")
    # The failed message is not settled yet: it will come back.
    assert (progress["done"], progress["changed"], progress["failed"]) == (2, 1, 0)
    assert progress["finished_at"] is None

    # Its last receive (maxReceiveCount 3): counted as failed, the run is complete.
    response = handler.lambda_handler(_sqs_event((bad, 3)), context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    progress = migrations.get_progress("display-phash")
    assert (progress["done"], progress["changed"], progress["failed"]) == (2, 1, 1)
    assert progress["finished_at"] is not None

    # A redelivered message settles again without changing anything.
    assert handler.lambda_handler(_sqs_event((good, 1)), context) == {"batchItemFailures": []}
    assert migrations.get_progress("display-phash")["changed"] == 1


def test_messages_of_a_restarted_run_do_not_count(aws) -> None:
    sideways, _ = seed_stale(aws.table)
    old_run = migrations.start_run(DISPLAY)[0]["run_id"]
    new_run = migrations.start_run(DISPLAY, restart=True)[0]["run_id"]
    assert new_run != old_run
    body = migrations.message(DISPLAY, old_run, [sideways])
    assert migrations.process_message(body, receive_count=1)["changed"] == 1  # the work is done
    progress = migrations.get_progress("display-phash")
    assert (progress["done"], progress["changed"]) == (0, 0)


def test_a_message_of_an_unknown_migration_fails(aws) -> None:
    with pytest.raises(KeyError, match="no migration named 'nope'"):
        migrations.process_message({"migration": "nope", "run_id": "x", "ids": []}, receive_count=1)


# ---------------------------------------------------------------- the command (enqueue side)
def _queue(aws) -> Any:
    import boto3

    from scripts.migrate import Target

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"migrations-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return Target("moto", url, None, sqs)


def _drain(target: Any) -> list[dict[str, Any]]:
    bodies = []
    while True:
        got = target.sqs.receive_message(QueueUrl=target.queue_url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return bodies
        for m in got["Messages"]:
            bodies.append(json.loads(m["Body"]))
            target.sqs.delete_message(QueueUrl=target.queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_enqueue_pages_resumes_from_the_cursor_and_restarts(aws) -> None:
    from imgsvc.records import IngestSource
    from scripts.migrate import enqueue
    from tests.integration.test_records import session

    ids = []
    for n in range(5):
        session(f"u{n}", "x.jpg")
        ids.append(records.commit_ingest(meta(n), IngestSource(f"u{n}", "x.jpg"))[0]["image_id"])
    target = _queue(aws)
    lines: list[str] = []
    kwargs = {"restart": False, "page_size": 2, "batch": 25, "out": lines.append}

    first = enqueue(target, "display-phash", max_pages=1, **kwargs)
    assert (first["enqueued"], first["pages"], first["listed"]) == (2, 1, False)
    sent = _drain(target)
    assert len(sent) == 1 and len(sent[0]["ids"]) == 2
    assert lines[-1] == "enqueued 2 (page 1)"

    rest = enqueue(target, "display-phash", max_pages=None, **kwargs)
    assert (rest["enqueued"], rest["pages"], rest["listed"]) == (5, 3, True)
    sent += _drain(target)
    assert sorted(i for b in sent for i in b["ids"]) == sorted(ids)  # each once
    assert {b["run_id"] for b in sent} == {first["run_id"]}
    assert any(line.startswith("resuming display-phash@1") for line in lines)

    again = enqueue(target, "display-phash", max_pages=None, **kwargs)
    assert again["enqueued"] == 5 and _drain(target) == []
    assert "--restart runs it again" in lines[-1]

    restarted = enqueue(target, "display-phash", max_pages=None, **{**kwargs, "restart": True})
    assert restarted["run_id"] != first["run_id"] and restarted["enqueued"] == 5
    assert sorted(i for b in _drain(target) for i in b["ids"]) == sorted(ids)


def test_batches_hold_at_most_the_batch_size(aws) -> None:
    from imgsvc.records import IngestSource
    from scripts.migrate import enqueue
    from tests.integration.test_records import session

    for n in range(7):
        session(f"u{n}", "x.jpg")
        records.commit_ingest(meta(n), IngestSource(f"u{n}", "x.jpg"))
    target = _queue(aws)
    enqueue(
        target,
        "display-phash",
        restart=False,
        page_size=100,
        batch=3,
        max_pages=None,
        out=lambda _: None,
    )
    assert sorted(len(b["ids"]) for b in _drain(target)) == [1, 3, 3]


def test_a_delete_that_read_the_old_hash_removes_the_moved_index_items(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete reads the image, the migration moves its hash, then the delete commits."""
    sideways, _ = seed_stale(aws.table)
    read = records.get_image
    outcomes: list[str] = []

    def read_then_migrate(image_id: str) -> dict[str, Any]:
        image = read(image_id)
        if not outcomes:
            outcomes.append(migrations.run_one(DISPLAY, image_id))
        return image

    monkeypatch.setattr(records, "get_image", read_then_migrate)
    deleted = records.delete_image(sideways)
    assert outcomes == ["changed"]
    assert deleted["phash"] == displayed_hash()
    assert _traces(aws.table, sideways) == []  # no index item of either hash is left


def test_new_images_carry_the_marks_of_what_ingest_already_does(aws) -> None:
    image = ingest_bytes(SIDEWAYS.read_bytes(), filename="new.jpg")[0]["image_id"]
    item = aws.table.get_item(Key={"PK": f"IMAGE#{image}", "SK": "META"})["Item"]
    assert item["migrations"] == {"display-phash@1", "thumbnails@1"} == migrations.ingest_marks()
    for name in ("display-phash", "thumbnails"):
        assert migrations.run_one(migrations.get(name), image) == "skipped"  # never decoded


def test_thumbnails_backfills_the_missing_thumbnail_once(aws) -> None:
    thumbs = migrations.get("thumbnails")
    image = ingest_bytes(SIDEWAYS.read_bytes(), filename="old.jpg")[0]["image_id"]
    key = storage.thumbnail_key(image)
    storage.delete_object(key)  # stored before thumbnails existed
    unmark(aws.table, image)
    assert migrations.run_one(thumbs, image) == "changed"
    with Image.open(io.BytesIO(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())) as t:
        assert t.size == (213, 320)  # 400x600 as displayed, at most 320 px
    assert migrations.run_one(thumbs, image) == "skipped"
    unmark(aws.table, image)
    assert migrations.run_one(thumbs, image) == "unchanged"  # it exists: not rendered again
    # Deleted meanwhile: skipped, nothing written back.
    records.delete_image(image, lambda: storage.delete_object(storage.image_key(image)))
    assert migrations.run_one(thumbs, image) == "missing"
