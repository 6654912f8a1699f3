"""DynamoDB single-table records: images, upload sessions, stats counters, the phash index.

Ingest and delete are single transactions with condition expressions, so that S3's
at-least-once delivery, Lambda retries and concurrent deliveries change nothing the second
time: an upload file moves out of ``pending`` once, and only that move counts.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from imgsvc import aws
from imgsvc.config import get_settings
from imgsvc.errors import BadRequest, Conflict, Gone, KeyReused, NotFound, Unavailable
from imgsvc.limits import max_files_per_session
from imgsvc.phash_index import index_keys
from imgsvc.shards import index_partitions, merged_newest, shard_of

# Upload records outlive the 30-day stats window so a recount can always see them.
UPLOAD_RECORD_DAYS = 35
_TXN_ATTEMPTS = 6
_RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError"})
_jitter = random.Random()

IMAGE_FIELDS = (
    "image_id", "format", "width", "height", "mode", "bytes", "sha256", "sha1", "make",
    "model", "camera", "orientation", "taken_at", "display_width", "display_height", "phash",
    "animated", "frames", "name", "desc", "source_url", "derived_from", "created_at",
)  # fmt: skip


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_pk(image_id: str) -> str:
    return f"IMAGE#{image_id}"


def upload_pk(upload_id: str) -> str:
    return f"UPLOAD#{upload_id}"


# --- counter and listing layout ----------------------------------------------------------------
# Counters are spread over STATS_SHARDS partitions ``STATS#SHARD#<p>``, each holding
# STATS_SLOTS copies (slot s) of every counter: p and s come from the image id, so no item
# or partition is written by every ingest and a delete decrements the item its ingest
# incremented. Items decide transaction conflicts, partitions the write budget and the
# number of reads: one Query per partition reads all its slots. Sort keys are ordered so that
# one Query from the window's first day reads the days, formats, total, then (bounded) the
# cameras: "DAY#<day>#<s>" < "FORMAT#<f>#<s>" < "TOTAL#<s>" < "~CAMERA#<name>#<s>".
# Items written before sharding (STATS#TOTAL, STATS#FORMAT, STATS#CAMERA, STATS#DAY#<day>) are
# read as one more shard by imgsvc.stats; the new code never writes them.
LEGACY_IMAGES_PARTITION = "IMAGES"
TOTAL = "TOTAL"
CAMERA_PREFIX = "~CAMERA#"


def stats_pk(shard: int) -> str:
    return f"STATS#SHARD#{shard}"


def stats_shard(image_id: str) -> tuple[int, int]:
    """(partition, slot) of an image's counters."""
    settings = get_settings()
    n = shard_of(image_id, 2**32)
    return n % settings.stats_shards, (n // settings.stats_shards) % settings.stats_slots


def day_sk(day: str, slot: int | None = None) -> str:
    """A day counter's sort key; without a slot, the prefix that sorts before all slots."""
    return f"DAY#{day}" if slot is None else f"DAY#{day}#{slot}"


def format_sk(fmt: str, slot: int) -> str:
    return f"FORMAT#{fmt}#{slot}"


def total_sk(slot: int) -> str:
    return f"{TOTAL}#{slot}"


def camera_sk(camera: str, slot: int) -> str:
    return f"{CAMERA_PREFIX}{camera}#{slot}"


def images_partition(image_id: str) -> str:
    """The GSI1PK of an image: ``IMAGES#<k>``, one of INDEX_SHARDS listing partitions."""
    return f"{LEGACY_IMAGES_PARTITION}#{shard_of(image_id, get_settings().index_shards)}"


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the API speaks ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def image_view(item: dict[str, Any]) -> dict[str, Any]:
    return {field: _plain(item.get(field)) for field in IMAGE_FIELDS}


@dataclass(frozen=True)
class IngestSource:
    """Where an ingested image came from: its upload file, plus user-given attributes."""

    upload_id: str
    filename: str
    name: str | None = None
    desc: str | None = None
    source_url: str | None = None
    derived_from: str | None = None
    presigned: bool = True  # False: the upload file record is created by the ingest itself
    note: str | None = None  # for the upload's file state: e.g. declared type != detected
    # Of a request that carries an Idempotency-Key (upload_id is then derived from the key):
    # what the request asked for, so the key sent with another request is refused.
    fingerprint: str | None = None


def _reasons(err: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in err.response.get("CancellationReasons", [])]


def _transact(items: list[dict[str, Any]]) -> list[str] | None:
    """Run a transaction; None on success, else the per-item cancellation reason codes.

    Transaction conflicts (a concurrent transaction on the same items) and throttling (a
    partition over its write budget) are retried here, with backoff; when they outlast the
    retries, Unavailable (503): the invocation fails and Lambda or the client retries it.
    """
    for attempt in range(_TXN_ATTEMPTS):
        try:
            aws.ddb_client().transact_write_items(TransactItems=items)
            return None
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _reasons(err)
            busy = _RETRYABLE & set(reasons)
            if busy and attempt + 1 < _TXN_ATTEMPTS:
                time.sleep(retry_delay(attempt))
                continue
            if busy:
                raise Unavailable(
                    f"the database stayed busy ({', '.join(sorted(busy))}): retry in a moment"
                ) from err
            return reasons
    return None  # pragma: no cover - the loop always returns


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt + 1`` of a cancelled transaction.

    Exponential, with jitter so that transactions cancelled by the same conflict do not
    retry in step and collide again (bench/contention.py simulates with this function).
    """
    base = 0.05 * 2**attempt
    return (rng or _jitter).uniform(base / 2, base)


def _counter(pk: str, sk: str, delta: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": get_settings().table_name,
            "Key": {"PK": pk, "SK": sk},
            "UpdateExpression": "ADD #c :d",
            "ExpressionAttributeNames": {"#c": "count"},
            "ExpressionAttributeValues": {":d": delta},
        }
    }


def _image_counters(image: dict[str, Any], delta: int) -> list[dict[str, Any]]:
    shard, slot = stats_shard(image["image_id"])
    pk = stats_pk(shard)
    items = [
        _counter(pk, total_sk(slot), delta),
        _counter(pk, format_sk(image["format"], slot), delta),
    ]
    if image.get("camera"):
        items.append(_counter(pk, camera_sk(image["camera"], slot), delta))
    return items


def _day_counter(image_id: str, now: datetime) -> dict[str, Any]:
    shard, slot = stats_shard(image_id)
    return _counter(stats_pk(shard), day_sk(f"{now:%Y-%m-%d}", slot), 1)


def _file_done(
    source: IngestSource, image_id: str, duplicate: bool, now: datetime
) -> dict[str, Any]:
    """The upload file's move to ``done``: allowed only from ``pending`` (or from nothing)."""
    table = get_settings().table_name
    item = {
        "PK": upload_pk(source.upload_id),
        "SK": f"FILE#{source.filename}",
        "upload_id": source.upload_id,
        "filename": source.filename,
        "status": "done",
        "image_id": image_id,
        "duplicate": duplicate,
        "error": None,
        "note": source.note,
        **({"fingerprint": source.fingerprint} if source.fingerprint else {}),
        "day": now.strftime("%Y-%m-%d"),
        "completed_at": iso(now),
        "expire_at": int((now + timedelta(days=UPLOAD_RECORD_DAYS)).timestamp()),
    }
    if source.presigned:
        return {
            "Update": {
                "TableName": table,
                "Key": {"PK": item["PK"], "SK": item["SK"]},
                "UpdateExpression": "SET #s = :done, image_id = :id, duplicate = :dup, "
                "#e = :none, #d = :day, completed_at = :at, note = :note",
                "ConditionExpression": "#s = :pending",
                "ExpressionAttributeNames": {"#s": "status", "#e": "error", "#d": "day"},
                "ExpressionAttributeValues": {
                    ":done": "done",
                    ":pending": "pending",
                    ":id": image_id,
                    ":dup": duplicate,
                    ":none": None,
                    ":day": item["day"],
                    ":at": item["completed_at"],
                    ":note": source.note,
                },
            }
        }
    return {
        "Put": {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }


def _image_put(
    meta: dict[str, Any], source: IngestSource, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    created = iso(now)
    image = {
        **{k: meta.get(k) for k in IMAGE_FIELDS if k in meta},
        "image_id": meta["sha256"],
        "name": source.name,
        "desc": source.desc,
        "source_url": source.source_url,
        "derived_from": source.derived_from,
        "created_at": created,
    }
    item = {
        "PK": image_pk(image["image_id"]),
        "SK": "META",
        "GSI1PK": images_partition(image["image_id"]),
        "GSI1SK": f"{created}#{image['image_id']}",
        **image,
    }
    put = {
        "Put": {
            "TableName": get_settings().table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    return image, put


# --- deletes versus ingests of the same bytes -----------------------------------------------
# A delete removes the record, then the object. An ingest of the same bytes stores the object,
# then records it. Without more, an ingest could store its object before a delete removes it
# and record it after: a record without an object. So each image has a guard item counting its
# deletes (``gen``) and saying whether one is between its two steps (``deleting``). An ingest
# reads the guard while no delete is running, then stores, then commits on condition that the
# guard is unchanged: any delete in between cancels the commit and the ingest stores again.
_GUARD_WAIT_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
# A delete never takes longer than its function's timeout: one older than this has crashed
# between its steps, and an ingest may take the guard over.
STALE_DELETE_S = 120


def _guard_key(image_id: str) -> dict[str, str]:
    return {"PK": f"DELETE#{image_id}", "SK": "GUARD"}


def _read_guard(image_id: str) -> int:
    """The delete generation of an image, once no delete of it is between its steps."""
    table = aws.table()
    for pause in (*_GUARD_WAIT_S, None):
        item = table.get_item(Key=_guard_key(image_id), ConsistentRead=True).get("Item")
        if not item or not item.get("deleting"):
            return int(item["gen"]) if item else 0
        started = float(item.get("deleting_at", 0))
        if time.time() - started > STALE_DELETE_S:
            _end_delete(image_id, int(item["gen"]))  # its delete crashed: finish it
            continue
        if pause is None:
            raise Conflict(f"image {image_id} is being deleted: retry in a moment")
        time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _guard_check(image_id: str, gen: int) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": get_settings().table_name,
            "Key": _guard_key(image_id),
            "ConditionExpression": "attribute_not_exists(PK)"
            if gen == 0
            else "gen = :g AND deleting = :f",
            **({"ExpressionAttributeValues": {":g": gen, ":f": False}} if gen else {}),
        }
    }


def _end_delete(image_id: str, gen: int) -> None:
    """The delete of generation ``gen`` is over (its object is gone)."""
    try:
        aws.table().update_item(
            Key=_guard_key(image_id),
            UpdateExpression="SET deleting = :f",
            ConditionExpression="gen = :g",
            ExpressionAttributeValues={":g": gen, ":f": False},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def commit_ingest(
    meta: dict[str, Any],
    source: IngestSource,
    store: Callable[[], None] | None = None,
    marks: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], bool]:
    """Record an ingested image once. Returns (image, duplicate).

    New content: image item + upload file done + day/format/camera/total counters + phash
    index, in one transaction. Known content: the upload file done as a duplicate + the day
    counter. A redelivery of an already-processed upload changes nothing.

    ``marks``: the migrations whose results the new image already has (see migrations).
    ``store`` puts the bytes in S3; it runs before each commit of new content, after the
    delete guard is read (see above), so a concurrent delete never leaves a record without
    its object.
    """
    table = get_settings().table_name
    image_id = meta["sha256"]
    for _ in range(_TXN_ATTEMPTS):
        gen = _read_guard(image_id)
        if store is not None:
            store()
        now = now_utc()
        day_counter = _day_counter(image_id, now)
        image, put = _image_put(meta, source, now)
        if marks:
            put["Put"]["Item"]["migrations"] = set(marks)
        index = [
            {
                "Put": {
                    "TableName": table,
                    "Item": {"PK": pk, "SK": image_id, "phash": meta["phash"]},
                }
            }
            for pk in index_keys(meta["phash"])
        ]
        new_items = [
            put,
            _file_done(source, image_id, False, now),
            day_counter,
            *_image_counters(image, +1),
            *index,
            _guard_check(image_id, gen),
        ]
        reasons = _transact(new_items)
        if reasons is None:
            return image, False
        if reasons[-1] == "ConditionalCheckFailed":
            continue  # a delete of these bytes ran meanwhile: store them again
        if reasons[1] == "ConditionalCheckFailed":
            done = _already_processed(source)
            if done is not None:
                return done
            continue
        if reasons[0] != "ConditionalCheckFailed":
            raise RuntimeError(f"ingest transaction cancelled: {reasons}")
        # The content exists already: record this upload as a duplicate of it.
        exists = {
            "ConditionCheck": {
                "TableName": table,
                "Key": {"PK": image_pk(image_id), "SK": "META"},
                "ConditionExpression": "attribute_exists(PK)",
            }
        }
        reasons = _transact([exists, _file_done(source, image_id, True, now), day_counter])
        if reasons is None:
            return get_image(image_id), True
        if reasons[1] == "ConditionalCheckFailed":
            done = _already_processed(source)
            if done is not None:
                return done
        # The image was deleted meanwhile: go round again and create it anew.
    raise RuntimeError("ingest did not settle after repeated conflicts")


def _already_processed(source: IngestSource) -> tuple[dict[str, Any], bool] | None:
    """What an earlier delivery of this upload recorded; None if it is (again) pending."""
    if not source.presigned:
        # The upload id is this request's own (random, or its Idempotency-Key's): its file
        # record is an earlier attempt of this request that committed (a lost answer, a retry).
        return recorded_request(source.upload_id, source.fingerprint) or _never_recorded(source)
    state = get_upload_file(source.upload_id, source.filename)
    if state is None:
        raise Conflict(f"upload file {source.filename} has no upload record")
    if state["status"] == "pending":
        return None
    if state["status"] != "done":
        raise Conflict(f"upload file {source.filename} was {state['status']}: {state.get('error')}")
    return get_image(state["image_id"]), bool(state.get("duplicate"))


def _never_recorded(source: IngestSource) -> tuple[dict[str, Any], bool]:
    raise Conflict(f"upload {source.upload_id}/{source.filename} was already recorded")


def recorded_request(upload_id: str, fingerprint: str | None) -> tuple[dict[str, Any], bool] | None:
    """What an API request (direct upload, import, crop) with this upload id recorded, if it
    did: (image, duplicate). Its Idempotency-Key sent with another request is a KeyReused."""
    condition = Key("PK").eq(upload_pk(upload_id))
    page = aws.table().query(KeyConditionExpression=condition, ConsistentRead=True, Limit=1)
    state = next(iter(page.get("Items", [])), None)
    if state is None or state.get("status") != "done":
        return None
    if state.get("fingerprint") != fingerprint:
        raise KeyReused(
            "this Idempotency-Key was already used for a different request: "
            "send a new key with each new request"
        )
    try:
        return get_image(state["image_id"]), bool(state.get("duplicate"))
    except NotFound:
        raise Gone(
            f"the request with this Idempotency-Key added image {state['image_id']}, which "
            "has been deleted since: send a new key to add it again"
        ) from None


def reject_upload_file(source: IngestSource, reason: str) -> bool:
    """Mark a pending upload file rejected. False if it had already left ``pending``."""
    now = now_utc()
    try:
        aws.table().update_item(
            Key={"PK": upload_pk(source.upload_id), "SK": f"FILE#{source.filename}"},
            UpdateExpression="SET #s = :rejected, #e = :reason, completed_at = :at",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues={
                ":rejected": "rejected",
                ":pending": "pending",
                ":reason": reason,
                ":at": iso(now),
            },
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def get_image(image_id: str) -> dict[str, Any]:
    item = aws.table().get_item(Key={"PK": image_pk(image_id), "SK": "META"}).get("Item")
    if item is None:
        raise NotFound(f"no image with id {image_id}")
    return image_view(item)


def get_images(image_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Images by id (missing ones left out), with BatchGetItem in chunks of 100."""
    table = get_settings().table_name
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(image_ids), 100):
        keys = [{"PK": image_pk(i), "SK": "META"} for i in image_ids[start : start + 100]]
        for item in batch_get(table, keys):
            found[item["image_id"]] = image_view(item)
    return found


def batch_get(table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BatchGetItem of at most 100 keys, retrying unprocessed keys with backoff."""
    request: dict[str, Any] = {table: {"Keys": keys}}
    items: list[dict[str, Any]] = []
    for attempt in range(8):
        response = aws.dynamodb().batch_get_item(RequestItems=request)
        items += response.get("Responses", {}).get(table, [])
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return items
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError("BatchGetItem left keys unprocessed after retries")


# A cursor is the GSI1SK of the last image returned, ``<created_at>#<image_id>``: unique and
# totally ordered, so it is the whole merge state across shards (each shard resumes below it).
_BOUNDARY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z#[0-9a-f]{64}$")
_BAD_CURSOR = "malformed cursor: pass the next_cursor of the previous page"


def _encode_cursor(boundary: str) -> str:
    return base64.urlsafe_b64encode(boundary.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError) as err:
        raise BadRequest(_BAD_CURSOR) from err
    if raw.startswith("{"):  # a cursor from before sharding: a LastEvaluatedKey as JSON
        try:
            key = json.loads(raw)
        except ValueError as err:
            raise BadRequest(_BAD_CURSOR) from err
        raw = key.get("GSI1SK") if isinstance(key, dict) else None
    if not isinstance(raw, str) or not _BOUNDARY_RE.match(raw):
        raise BadRequest(_BAD_CURSOR)
    return raw


def list_images(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of images, newest first, and the cursor of the next page (None at the end).

    Reads the INDEX_SHARDS listing partitions and the legacy ``IMAGES`` one, merged.
    """
    partitions = index_partitions(LEGACY_IMAGES_PARTITION, get_settings().index_shards)
    boundary = _decode_cursor(cursor) if cursor else None
    items, more = merged_newest(partitions, limit, boundary)
    return [image_view(i) for i in items], _encode_cursor(items[-1]["GSI1SK"]) if more else None


def delete_image(
    image_id: str, delete_object: Callable[[], None] | None = None, *, _read: Any = None
) -> dict[str, Any]:
    """Delete the image item, its phash index entries, and take it out of the counts; then
    ``delete_object`` (the S3 object) while the delete guard says a delete is running.

    The per-day upload counters are history and stay. Returns the deleted image. A delete
    whose transaction committed but that did not get to remove the objects (a timeout, a lost
    answer, an S3 error) is finished by the next delete of the id (the client's retry).
    """
    try:
        image = image_view(_read) if _read is not None else get_image(image_id)
    except NotFound:
        if _finish_delete(image_id, delete_object):
            return {"image_id": image_id}
        raise
    table = get_settings().table_name
    guard = aws.table().get_item(Key=_guard_key(image_id), ConsistentRead=True).get("Item")
    gen = int(guard["gen"]) + 1 if guard else 1
    items = [
        {
            "Delete": {
                "TableName": table,
                "Key": {"PK": image_pk(image_id), "SK": "META"},
                # The phash it read: a migration moving the index meanwhile must not leave
                # index items behind (imgsvc.migrations).
                "ConditionExpression": "attribute_exists(PK) AND phash = :p",
                "ExpressionAttributeValues": {":p": image["phash"]},
            }
        },
        *_image_counters(image, -1),
        *[
            {"Delete": {"TableName": table, "Key": {"PK": pk, "SK": image_id}}}
            for pk in index_keys(image["phash"])
        ],
        {
            "Put": {
                "TableName": table,
                "Item": {
                    **_guard_key(image_id),
                    "gen": gen,
                    "deleting": True,
                    "deleting_at": int(time.time()),
                    # for whoever finishes this delete (_finish_delete): the camera counter
                    **({"camera": image["camera"]} if image.get("camera") else {}),
                },
                "ConditionExpression": "attribute_not_exists(PK)" if gen == 1 else "gen = :p",
                **({"ExpressionAttributeValues": {":p": gen - 1}} if gen > 1 else {}),
            }
        },
    ]
    reasons = _transact(items)
    if reasons is not None:
        if reasons[0] == "ConditionalCheckFailed":
            key = {"PK": image_pk(image_id), "SK": "META"}
            current = aws.table().get_item(Key=key, ConsistentRead=True).get("Item")
            if current is not None and current.get("phash") != image["phash"]:
                return delete_image(image_id, delete_object, _read=current)  # hash moved
            if current is None and _finish_delete(image_id, delete_object):
                return image  # our own commit, whose answer was lost (botocore sent it again)
            raise NotFound(f"no image with id {image_id}")
        if reasons[-1] == "ConditionalCheckFailed":
            raise Conflict(f"image {image_id} is being deleted already: retry in a moment")
        raise RuntimeError(f"delete transaction cancelled: {reasons}")
    _complete_delete(image_id, gen, image.get("camera"), delete_object)
    return image


def _complete_delete(
    image_id: str, gen: int, camera: str | None, delete_object: Callable[[], None] | None
) -> None:
    """The steps after the record is gone: the objects, the guard, a camera count at zero."""
    if delete_object is not None:
        delete_object()
    _end_delete(image_id, gen)
    if camera:
        shard, slot = stats_shard(image_id)
        _remove_if_zero(stats_pk(shard), camera_sk(camera, slot))


def _finish_delete(image_id: str, delete_object: Callable[[], None] | None) -> bool:
    """Finish a delete that removed the record but not (yet) the objects. False if none is
    between its steps.

    It takes the delete over by moving the guard to the next generation while it still says
    ``deleting``: the delete it takes over, if still running, then cannot clear the guard (its
    _end_delete is for the old generation), so no ingest stores the bytes while the objects
    are being removed here.
    """
    key = _guard_key(image_id)
    guard = aws.table().get_item(Key=key, ConsistentRead=True).get("Item")
    if not guard or not guard.get("deleting"):
        return False
    gen = int(guard["gen"]) + 1
    try:
        aws.table().update_item(
            Key=key,
            UpdateExpression="SET gen = :n, deleting_at = :now",
            ConditionExpression="gen = :g AND deleting = :t",
            ExpressionAttributeValues={
                ":n": gen,
                ":g": gen - 1,
                ":t": True,
                ":now": int(time.time()),
            },
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False  # finished or taken over meanwhile
        raise
    _complete_delete(image_id, gen, guard.get("camera"), delete_object)
    return True


def _remove_if_zero(pk: str, sk: str) -> None:
    """Remove a counter that reached zero, so /stats reads only names it reports.

    Outside the transaction (an item cannot be updated and deleted in one). The condition makes
    it safe against a concurrent ingest: an increment in between leaves the item; one after
    the removal recreates it (ADD on a missing item starts from 0). Negative shards (a legacy
    image deleted) stay, so the sum over shards stays exact.
    """
    try:
        aws.table().delete_item(
            Key={"PK": pk, "SK": sk},
            ConditionExpression="#c = :zero",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":zero": 0},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


# --- upload sessions -------------------------------------------------------------------------


def create_session(upload_id: str, expires_at: datetime, files: list[dict[str, Any]]) -> None:
    now = now_utc()
    table = get_settings().table_name
    expire = int((now + timedelta(days=UPLOAD_RECORD_DAYS)).timestamp())
    session = {
        "PK": upload_pk(upload_id),
        "SK": "SESSION",
        "upload_id": upload_id,
        "created_at": iso(now),
        "expires_at": iso(expires_at),
        "expires_epoch": int(expires_at.timestamp()),
        "file_count": len(files),
        "expire_at": expire,
    }
    items = [
        {
            "Put": {
                "TableName": table,
                "Item": session,
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    ]
    items += [_file_put(upload_id, f, now, expire) for f in files]
    reasons = _transact(items)
    if reasons is not None:
        raise RuntimeError(f"could not create upload session: {reasons}")


def _file_put(upload_id: str, f: dict[str, Any], now: datetime, expire: int) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": get_settings().table_name,
            "Item": {
                "PK": upload_pk(upload_id),
                "SK": f"FILE#{f['filename']}",
                "upload_id": upload_id,
                "filename": f["filename"],
                "content_type": f["content_type"],
                "declared_size": f.get("size"),
                "status": "pending",
                "image_id": None,
                "duplicate": False,
                "error": None,
                "created_at": iso(now),
                "expire_at": expire,
            },
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }


def add_files(upload_id: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """Add files to a live session; returns the session item."""
    session = get_session_item(upload_id)
    now = now_utc()
    if int(session["expires_epoch"]) <= now.timestamp():
        raise Gone(
            f"upload session {upload_id} expired at {session['expires_at']}: start a new one"
        )
    table = get_settings().table_name
    most = max_files_per_session()
    check = {
        "Update": {
            "TableName": table,
            "Key": {"PK": upload_pk(upload_id), "SK": "SESSION"},
            "UpdateExpression": "ADD file_count :n",
            "ConditionExpression": "expires_epoch > :now AND file_count <= :room",
            "ExpressionAttributeValues": {
                ":n": len(files),
                ":now": int(now.timestamp()),
                ":room": most - len(files),
            },
        }
    }
    items = [check] + [_file_put(upload_id, f, now, int(session["expire_at"])) for f in files]
    reasons = _transact(items)
    if reasons is None:
        return session
    if reasons[0] == "ConditionalCheckFailed":
        raise Conflict(f"upload session {upload_id} expired or is full ({most} files at most)")
    taken = [
        files[i - 1]["filename"]
        for i, r in enumerate(reasons)
        if i and r == "ConditionalCheckFailed"
    ]
    if taken:
        raise Conflict(f"these filenames are already in upload session {upload_id}: {taken}")
    raise RuntimeError(f"could not add files: {reasons}")


def get_session_item(upload_id: str) -> dict[str, Any]:
    item = aws.table().get_item(Key={"PK": upload_pk(upload_id), "SK": "SESSION"}).get("Item")
    if item is None:
        raise NotFound(f"no upload session {upload_id}")
    return item


def get_session(upload_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The session item and all its file items."""
    session = None
    files: list[dict[str, Any]] = []
    condition = Key("PK").eq(upload_pk(upload_id))
    for item in aws.all_items(aws.table().query, KeyConditionExpression=condition):
        if item["SK"] == "SESSION":
            session = item
        elif item["SK"].startswith("FILE#"):
            files.append(item)
    if session is None:
        raise NotFound(f"no upload session {upload_id}")
    return session, files


def get_upload_file(upload_id: str, filename: str) -> dict[str, Any] | None:
    return (
        aws.table()
        .get_item(Key={"PK": upload_pk(upload_id), "SK": f"FILE#{filename}"}, ConsistentRead=True)
        .get("Item")
    )


def file_state(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": item["status"],
        "image_id": item.get("image_id"),
        "duplicate": bool(item.get("duplicate")),
        "error": item.get("error"),
        "note": item.get("note"),
    }
