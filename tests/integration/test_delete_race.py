"""A delete of an image racing an ingest of the same bytes, replayed deterministically: the
ingest never records bytes that the delete then removes (no record without its object)."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imgsvc import catalog, ingest, records, stats, storage
from imgsvc.errors import Conflict


def png(seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def object_exists(aws: Any, image_id: str) -> bool:
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=storage.image_key(image_id))
    return listed.get("KeyCount", 0) == 1


def counts_agree() -> bool:
    return stats.get_stats() == stats.recount()


def test_an_ingest_waits_for_a_delete_between_its_two_steps(aws, monkeypatch) -> None:
    data = png()
    image, _ = ingest.ingest_bytes(data, filename="a.png")
    image_id = image["image_id"]
    in_the_middle, go_on = threading.Event(), threading.Event()
    ingest_waiting, delete_over = threading.Event(), threading.Event()

    def delete_object() -> None:  # the delete, between its record removal and its S3 delete
        in_the_middle.set()
        assert go_on.wait(10)
        storage.delete_object(storage.image_key(image_id))

    def waiting(seconds: float) -> None:  # the ingest backs off while the guard says deleting
        ingest_waiting.set()
        assert delete_over.wait(10)

    monkeypatch.setattr(records.time, "sleep", waiting)
    deleter = threading.Thread(target=records.delete_image, args=(image_id, delete_object))
    deleter.start()
    assert in_the_middle.wait(10)
    result: list[Any] = []
    ingester = threading.Thread(
        target=lambda: result.append(ingest.ingest_bytes(data, filename="b.png"))
    )
    ingester.start()
    assert ingest_waiting.wait(10)  # it did not store or record while the delete was running
    go_on.set()
    deleter.join(10)
    delete_over.set()
    ingester.join(10)
    (again, duplicate) = result[0]
    assert again["image_id"] == image_id and duplicate is False  # recorded anew
    assert object_exists(aws, image_id)
    assert records.get_image(image_id)["image_id"] == image_id
    assert counts_agree() and stats.recount()["total_images"] == 1


def test_a_whole_delete_between_an_ingests_store_and_commit(aws, monkeypatch) -> None:
    data = png()
    image_id = ingest.ingest_bytes(data, filename="a.png")[0]["image_id"]
    real_store = storage.store_image
    stores: list[int] = []

    def store_then_delete(*args: Any) -> None:
        real_store(*args)
        stores.append(1)
        if len(stores) == 1:
            catalog.delete(image_id)  # record, then object: all of it before the commit

    monkeypatch.setattr(storage, "store_image", store_then_delete)
    again, duplicate = ingest.ingest_bytes(data, filename="b.png")
    assert len(stores) == 2  # the commit saw the delete and stored the bytes again
    assert (again["image_id"], duplicate) == (image_id, False)
    assert object_exists(aws, image_id) and records.get_image(image_id)
    assert counts_agree() and stats.recount()["total_images"] == 1


def test_deleted_twice_and_ingested_again(aws) -> None:
    data = png()
    image_id = ingest.ingest_bytes(data, filename="a.png")[0]["image_id"]
    for name in ("b.png", "c.png"):
        catalog.delete(image_id)
        assert not object_exists(aws, image_id)
        assert ingest.ingest_bytes(data, filename=name)[1] is False
        assert object_exists(aws, image_id)


def test_a_crashed_delete_is_taken_over_once_stale(aws) -> None:
    data = png()
    image_id = ingest.ingest_bytes(data, filename="a.png")[0]["image_id"]
    records.delete_image(image_id, lambda: None)
    # The delete crashed between its steps long ago: its guard still says deleting.
    aws.table.put_item(
        Item={
            **records._guard_key(image_id),
            "gen": 1,
            "deleting": True,
            "deleting_at": int(time.time()) - records.STALE_DELETE_S - 1,
        }
    )
    assert ingest.ingest_bytes(data, filename="b.png")[1] is False
    assert object_exists(aws, image_id)


def test_a_running_delete_makes_an_ingest_conflict_after_waiting(aws, monkeypatch) -> None:
    data = png()
    image_id = ingest.ingest_bytes(data, filename="a.png")[0]["image_id"]
    waits: list[float] = []
    monkeypatch.setattr(records.time, "sleep", waits.append)

    def ingest_meanwhile() -> None:
        with pytest.raises(Conflict, match="being deleted"):
            ingest.ingest_bytes(data, filename="b.png")
        storage.delete_object(storage.image_key(image_id))

    records.delete_image(image_id, ingest_meanwhile)
    assert waits == list(records._GUARD_WAIT_S)
    assert not object_exists(aws, image_id) and counts_agree()
    assert stats.recount()["total_images"] == 0
