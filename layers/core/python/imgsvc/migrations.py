"""The one migration mechanism: named, versioned steps applied to every stored image.

A migration is a function of one image (its item, read consistently) registered with
``@register(name, version)``. It must be idempotent: it records on the image item that it ran
(the ``migrations`` string set gets ``<name>@<version>``, see ``mark_update``), in the same
write as its change, conditioned on the image still existing, so a deleted image is never
brought back. ``run_one`` skips images that carry the tag already or no longer exist.

The work fans out: ``scripts/migrate.py`` pages the image listing and sends messages of up to
``BATCH_IDS`` ids to the MigrationQueue; MigrationFunction (``process_message``) runs the
migration on each id. Progress is one item per migration, ``MIGRATION#<name>`` / ``RUN``:
the listing cursor of the last page enqueued, counters (atomic ADD), timestamps. A bumped
version is a new run: images marked with the old tag are migrated again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from imgsvc import aws, records, storage
from imgsvc.config import get_settings
from imgsvc.observability import logger
from imgsvc.phash_index import index_keys

Outcome = Literal["changed", "unchanged", "skipped", "missing"]
BATCH_IDS = 25  # ids per queue message: one invocation decodes at most this many per message
MARKS = "migrations"  # the image item's string set of tags that have run
_ATTEMPTS = 3  # a concurrent writer of the same image (a duplicate message) costs a re-read


@dataclass(frozen=True)
class Migration:
    name: str
    version: int
    description: str
    apply: Callable[[Migration, dict[str, Any]], Outcome]
    imaging: bool  # needs Pillow: only MigrationFunction (ImagingLayer) runs it
    at_ingest: bool  # ingest already produces its result: new images carry its tag

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


REGISTRY: dict[str, Migration] = {}


def register(
    name: str, version: int, description: str, *, imaging: bool = False, at_ingest: bool = False
) -> Callable[[Callable[[Migration, dict[str, Any]], Outcome]], Migration]:
    """Register ``fn(migration, image_item) -> outcome`` as migration ``name``.

    ``fn`` gets an image that exists and lacks this migration's tag; it writes its change and
    the tag together (``mark_update``), conditioned on the image as it read it, and returns
    "changed" or "unchanged". ``NotMigrated`` (another writer or a delete won the race) makes
    ``run_one`` read the image again. ``at_ingest``: images ingested by this code already
    have what the migration makes, so ingest records its tag and the backfill skips them.
    """

    def wrap(fn: Callable[[Migration, dict[str, Any]], Outcome]) -> Migration:
        if name in REGISTRY:
            raise ValueError(f"migration {name} is registered twice")
        migration = Migration(name, version, description, fn, imaging, at_ingest)
        REGISTRY[name] = migration
        return migration

    return wrap


def ingest_marks() -> frozenset[str]:
    """The tags a newly ingested image carries (``migrations`` string set of its item)."""
    return frozenset(m.tag for m in REGISTRY.values() if m.at_ingest)


def get(name: str) -> Migration:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise KeyError(f"no migration named {name!r} (known: {known})") from None


class NotMigrated(Exception):
    """The conditional write lost to a concurrent change of the image: read it again."""


def is_done(migration: Migration, item: dict[str, Any]) -> bool:
    return migration.tag in (item.get(MARKS) or set())


def mark_update(
    migration: Migration,
    image_id: str,
    *,
    set_expr: str = "",
    condition: str = "",
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Update (a TransactItem body) that adds the tag to the image, and optionally SETs
    more; only if the image still exists (never an upsert) and ``condition`` holds."""
    cond = " AND ".join(c for c in ("attribute_exists(PK)", condition) if c)
    update = {
        "TableName": get_settings().table_name,
        "Key": {"PK": records.image_pk(image_id), "SK": "META"},
        "UpdateExpression": (f"SET {set_expr} " if set_expr else "") + f"ADD {MARKS} :tag",
        "ConditionExpression": cond,
        "ExpressionAttributeValues": {":tag": {migration.tag}, **(values or {})},
    }
    if names:
        update["ExpressionAttributeNames"] = names
    return update


def write_alone(update: dict[str, Any]) -> None:
    """Run one ``mark_update`` as a plain UpdateItem; NotMigrated if its condition failed."""
    try:
        aws.ddb_client().update_item(**update)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise NotMigrated from err
        raise


def _read(image_id: str) -> dict[str, Any] | None:
    key = {"PK": records.image_pk(image_id), "SK": "META"}
    return aws.table().get_item(Key=key, ConsistentRead=True).get("Item")


def run_one(migration: Migration, image_id: str) -> Outcome:
    """Apply a migration to one image: "skipped" if done already, "missing" if deleted."""
    for _ in range(_ATTEMPTS):
        item = _read(image_id)
        if item is None:
            return "missing"
        if is_done(migration, item):
            return "skipped"
        try:
            return migration.apply(migration, item)
        except NotMigrated:
            continue
    raise RuntimeError(f"{migration.tag}: image {image_id} kept changing under the migration")


# --- the first migration ------------------------------------------------------------------------


@register(
    "display-phash",
    1,
    "phash of the picture as displayed (EXIF orientation applied), and its similarity index",
    imaging=True,
    at_ingest=True,
)
def display_phash(migration: Migration, item: dict[str, Any]) -> Outcome:
    from imgsvc.imaging import decode_image  # Pillow: MigrationFunction has the ImagingLayer
    from imgsvc.phash import display_phash_hex

    image_id, old = item["image_id"], item["phash"]
    data = storage.read_image(image_id)
    if data is None:
        if _read(image_id) is None:
            raise NotMigrated  # deleted meanwhile (the record goes first): run_one says so
        raise RuntimeError(f"image {image_id} has a record but no object in storage")
    settings = get_settings()
    decoded = decode_image(
        data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes
    )
    new = display_phash_hex(decoded, _orientation(item.get("orientation")))
    # Conditioned on the hash it read: a concurrent writer makes it read again.
    if new == old:
        write_alone(
            mark_update(migration, image_id, condition="phash = :old", values={":old": old})
        )
        return "unchanged"
    image = mark_update(
        migration,
        image_id,
        set_expr="phash = :new",
        condition="phash = :old",
        values={":old": old, ":new": new},
    )
    reasons = records._transact([{"Update": image}, *_index_moves(image_id, old, new)])
    if reasons is None:
        return "changed"
    if reasons[0] == "ConditionalCheckFailed":
        raise NotMigrated
    raise RuntimeError(f"{migration.tag}: transaction cancelled for {image_id}: {reasons}")


def _orientation(value: Any) -> int | None:
    return int(value) if value is not None else None


def _index_moves(image_id: str, old: str, new: str) -> list[dict[str, Any]]:
    """Put every new index item (each carries the full hash, which similar reads) and delete
    the old ones under chunks whose value changed; as ``records.commit_ingest`` writes them."""
    table = get_settings().table_name
    new_keys = index_keys(new)
    puts = [
        {"Put": {"TableName": table, "Item": {"PK": pk, "SK": image_id, "phash": new}}}
        for pk in new_keys
    ]
    deletes = [
        {"Delete": {"TableName": table, "Key": {"PK": pk, "SK": image_id}}}
        for pk in index_keys(old)
        if pk not in new_keys
    ]
    return puts + deletes


# --- progress -----------------------------------------------------------------------------------
COUNTERS = ("enqueued", "done", "changed", "failed")


def progress_key(name: str) -> dict[str, str]:
    return {"PK": f"MIGRATION#{name}", "SK": "RUN"}


def get_progress(name: str) -> dict[str, Any] | None:
    item = aws.table().get_item(Key=progress_key(name), ConsistentRead=True).get("Item")
    return records._plain(item) if item else None


def start_run(migration: Migration, *, restart: bool = False) -> tuple[dict[str, Any], bool]:
    """The run to continue, or a new one (none yet, ``restart``, or a new version).

    Returns (progress, resumed). A new run has a new ``run_id``: messages of an older run
    still do their (idempotent) work but no longer count.
    """
    current = get_progress(migration.name)
    if current and not restart and current.get("version") == migration.version:
        return current, True
    item = {
        **progress_key(migration.name),
        "name": migration.name,
        "version": migration.version,
        "run_id": str(uuid.uuid4()),
        "cursor": None,
        "pages": 0,
        "listed": False,
        "started_at": records.iso(records.now_utc()),
        "finished_at": None,
        **dict.fromkeys(COUNTERS, 0),
    }
    aws.table().put_item(Item=item)
    return records._plain(item), False


def record_page(name: str, run_id: str, count: int, cursor: str | None) -> dict[str, Any]:
    """After a page's messages are sent: count them and move the cursor (None: listed all)."""
    values: dict[str, Any] = {":n": count, ":one": 1, ":c": cursor, ":r": run_id}
    expr = "SET #cur = :c ADD enqueued :n, pages :one"
    if cursor is None:
        expr = "SET #cur = :c, listed = :t, listed_at = :at ADD enqueued :n, pages :one"
        values |= {":t": True, ":at": records.iso(records.now_utc())}
    item = aws.table().update_item(
        Key=progress_key(name),
        UpdateExpression=expr,
        ConditionExpression="run_id = :r",
        ExpressionAttributeNames={"#cur": "cursor"},
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
    )["Attributes"]
    return finish_if_complete(records._plain(item))


def _count(name: str, run_id: str, deltas: dict[str, int]) -> None:
    deltas = {k: v for k, v in deltas.items() if v}
    if not deltas:
        return
    try:
        item = aws.table().update_item(
            Key=progress_key(name),
            UpdateExpression="ADD " + ", ".join(f"{k} :{k}" for k in deltas),
            ConditionExpression="run_id = :r",
            ExpressionAttributeValues={":r": run_id, **{f":{k}": v for k, v in deltas.items()}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return  # a message of a run that was restarted since: its work stands, uncounted
        raise
    finish_if_complete(records._plain(item))


def is_complete(progress: dict[str, Any]) -> bool:
    return bool(progress.get("listed")) and (
        progress["done"] + progress["failed"] >= progress["enqueued"]
    )


def finish_if_complete(progress: dict[str, Any]) -> dict[str, Any]:
    """Set ``finished_at`` once, when the listing is enqueued and every id is accounted for."""
    if not is_complete(progress) or progress.get("finished_at"):
        return progress
    now = records.iso(records.now_utc())
    try:
        aws.table().update_item(
            Key=progress_key(progress["name"]),
            UpdateExpression="SET finished_at = :now",
            ConditionExpression="run_id = :r AND finished_at = :none",
            ExpressionAttributeValues={":now": now, ":r": progress["run_id"], ":none": None},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return progress
    return {**progress, "finished_at": now}


# --- the queue's messages -----------------------------------------------------------------------


def message(migration: Migration, run_id: str, image_ids: list[str]) -> dict[str, Any]:
    return {"migration": migration.name, "run_id": run_id, "ids": image_ids}


class BatchFailed(Exception):
    """Some ids of a message failed: the message is reported as a batch item failure."""


def process_message(body: dict[str, Any], *, receive_count: int) -> dict[str, int]:
    """Run one message's ids; raises BatchFailed when any failed (the queue retries it).

    Counts exactly once per message: ``done`` and ``failed`` when it settles (all succeeded,
    or its last receive), ``changed`` on every attempt (a change happens once: the next
    attempt skips it). Returns the outcomes of this attempt.
    """
    migration = get(body["migration"])
    tally: dict[str, int] = {"changed": 0, "unchanged": 0, "skipped": 0, "missing": 0}
    errors: list[str] = []
    for image_id in body["ids"]:
        try:
            tally[run_one(migration, image_id)] += 1
        except Exception:
            logger.exception(f"{migration.tag} failed", extra={"image_id": image_id})
            errors.append(image_id)
    last = receive_count >= get_settings().migration_max_receives
    settled = not errors or last
    _count(
        migration.name,
        body["run_id"],
        {
            "changed": tally["changed"],
            "done": len(body["ids"]) - len(errors) if settled else 0,
            "failed": len(errors) if settled else 0,
        },
    )
    logger.info(f"{migration.tag} batch", extra={**tally, "failed": len(errors)})
    if errors:
        where = "the dead-letter queue" if last else "a retry"
        raise BatchFailed(f"{migration.tag}: {len(errors)} ids failed, message to {where}")
    return tally


@register(
    "thumbnails",
    1,
    "the thumbnail of the picture as displayed (320 px WebP) beside each original",
    imaging=True,
    at_ingest=True,
)
def thumbnails(migration: Migration, item: dict[str, Any]) -> Outcome:
    from imgsvc.errors import NotFound
    from imgsvc.renditions import ensure_thumbnail  # Pillow: MigrationFunction only

    image_id = item["image_id"]
    try:
        wrote = ensure_thumbnail(image_id)
    except NotFound:
        if _read(image_id) is None:
            raise NotMigrated from None  # deleted meanwhile: run_one says "missing"
        raise
    write_alone(mark_update(migration, image_id))
    return "changed" if wrote else "unchanged"
