"""Section: ingest at scale, the write contention of the table design before and after sharding.

The items each ingest writes come from the real code: ``records.commit_ingest`` runs for
distinct generated images with ``records._transact`` replaced by a recorder, so the
TransactItems are exactly what the service would send. The design before sharding is the same
capture with its keys mapped back to the old layout (``legacy_layout``, the keys
``imgsvc.stats`` still reads as the legacy shard). ``bench.contention`` then runs those
transactions concurrently under DynamoDB's contention rules, in virtual time.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
from collections import Counter
from typing import Any
from unittest import mock

from bench import report
from bench.contention import Result, Rules, Simulation, Txn, txn_from_items

IMAGES = 5000
CONCURRENCY = (1, 16, 64, 256)  # 1, 16, 64 asked; 256 shows the headroom
SESSION_FILES = 100  # files per upload session in the generated batch
FORMATS = (("JPEG", 0.85), ("PNG", 0.10), ("WEBP", 0.05))
CAMERAS = (("Apple - iPhone 15 Pro", 0.4), ("Canon - EOS R6", 0.2), ("SONY - ILCE-7M4", 0.1))
PARTITION_LIMIT = 1000.0


def generated_meta(n: int, rng: random.Random) -> dict[str, Any]:
    """Metadata of a distinct image, with a realistic mix of formats and cameras."""
    sha = hashlib.sha256(f"scale-{n}".encode()).hexdigest()
    fmt = rng.choices([f for f, _ in FORMATS], [w for _, w in FORMATS])[0]
    roll, camera = rng.random(), None
    for name, weight in CAMERAS:
        if roll < weight:
            camera = name
            break
        roll -= weight
    make, _, model = (camera or "").partition(" - ")
    return {
        "sha256": sha,
        "sha1": hashlib.sha1(sha.encode()).hexdigest(),
        "format": fmt,
        "width": 4000,
        "height": 3000,
        "mode": "RGB",
        "bytes": 4_500_000,
        "make": make or None,
        "model": model or None,
        "camera": camera,
        "orientation": 1,
        "taken_at": "2026-11-30T10:00:00",
        "display_width": 4000,
        "display_height": 3000,
        "phash": f"{rng.getrandbits(64):016x}",
    }


def capture_ingests(
    images: int, *, stats_shards: int, stats_slots: int, index_shards: int, seed: int = 1
) -> list[list[dict[str, Any]]]:
    """The TransactItems ``records.commit_ingest`` builds for each of ``images`` new images."""
    from imgsvc import records

    rng = random.Random(seed)
    captured: list[list[dict[str, Any]]] = []

    def record(items: list[dict[str, Any]]) -> None:
        captured.append(copy.deepcopy(items))
        return None  # committed

    env = {
        "STATS_SHARDS": str(stats_shards),
        "STATS_SLOTS": str(stats_slots),
        "INDEX_SHARDS": str(index_shards),
    }
    with (
        mock.patch.dict(os.environ, env),
        mock.patch.object(records, "_transact", record),
        # No delete of these images is running: the guard read is a plain GetItem, no write.
        mock.patch.object(records, "_read_guard", lambda image_id: 0),
    ):
        for n in range(images):
            source = records.IngestSource(f"batch-{n // SESSION_FILES}", f"IMG_{n:05d}.jpg")
            records.commit_ingest(generated_meta(n, rng), source)
    return captured


def legacy_layout(items: list[dict[str, Any]], day_shards: int = 10) -> list[dict[str, Any]]:
    """The same transaction in the layout before sharding: one total, format and camera item
    each, the day counter in ``STATS#DAY#<day>`` (shard from the upload file), GSI1PK=IMAGES."""
    from imgsvc import records

    out = copy.deepcopy(items)
    upload = next(
        e["Update"]["Key"] if "Update" in e else e["Put"]["Item"]
        for e in out
        if ("Update" in e and e["Update"]["Key"]["PK"].startswith("UPLOAD#"))
        or ("Put" in e and e["Put"]["Item"]["PK"].startswith("UPLOAD#"))
    )
    upload_id, filename = upload["PK"].removeprefix("UPLOAD#"), upload["SK"].removeprefix("FILE#")
    digest = hashlib.sha256(f"{upload_id}/{filename}".encode()).digest()
    day_shard = int.from_bytes(digest[:4], "big") % day_shards
    for entry in out:
        if "Put" in entry and "GSI1PK" in entry["Put"]["Item"]:
            entry["Put"]["Item"]["GSI1PK"] = records.LEGACY_IMAGES_PARTITION
        key = entry.get("Update", {}).get("Key")
        if not key or not key["PK"].startswith("STATS#SHARD#"):
            continue
        counter = key["SK"].rpartition("#")[0]  # without the slot
        if counter == records.TOTAL:
            key.update(PK="STATS#TOTAL", SK="TOTAL")
        elif counter.startswith("FORMAT#"):
            key.update(PK="STATS#FORMAT", SK=counter.removeprefix("FORMAT#"))
        elif counter.startswith(records.CAMERA_PREFIX):
            key.update(PK="STATS#CAMERA", SK=counter.removeprefix(records.CAMERA_PREFIX))
        elif counter.startswith("DAY#"):
            day = counter.removeprefix("DAY#")
            key.update(PK=f"STATS#DAY#{day}", SK=f"SHARD#{day_shard}")
    return out


def static_ceiling(txns: list[Txn]) -> tuple[str, float]:
    """Images/s before the busiest partition reaches its limit, with writes spread evenly in
    time: limit / (WCU per image on that partition). Upload-session partitions are left out
    (each holds at most one session's files); the report states their own ceiling."""
    per_partition: Counter[str] = Counter()
    for txn in txns:
        for partition, wcu in txn.wcu:
            if not partition.startswith("TABLE:UPLOAD#"):
                per_partition[partition] += wcu
    name, total = per_partition.most_common(1)[0]
    return name, PARTITION_LIMIT / (total / len(txns))


def simulate(txns: list[Txn], concurrency: int, rules: Rules) -> Result:
    return Simulation(txns, concurrency, rules, seed=concurrency).run()


def run() -> bool:
    from imgsvc import records
    from imgsvc.config import get_settings

    settings = get_settings()  # the defaults (template.yaml sets the same)
    stats_shards, slots, index_shards = (
        settings.stats_shards,
        settings.stats_slots,
        settings.index_shards,
    )
    captured = capture_ingests(
        IMAGES, stats_shards=stats_shards, stats_slots=slots, index_shards=index_shards
    )
    new = [txn_from_items(items) for items in captured]
    old = [txn_from_items(legacy_layout(items)) for items in captured]
    rules = Rules(
        attempts=records._TXN_ATTEMPTS,
        retry_delay=records.retry_delay,
        retryable=records._RETRYABLE,
    )
    report.note(
        f"{IMAGES:,} distinct generated images per run, in upload sessions of {SESSION_FILES}; "
        f"each ingest's TransactItems captured from records.commit_ingest (after: "
        f"STATS_SHARDS={stats_shards}, STATS_SLOTS={slots}, INDEX_SHARDS={index_shards}; "
        "before: the same items "
        "mapped to the unsharded keys). Virtual time: "
        f"{rules.work_seconds * 1e3:.0f} ms mean work before the transaction, transactions "
        f"hold their items {rules.txn_seconds * 1e3:.0f} ms, a cancellation answers in "
        f"{rules.cancel_seconds * 1e3:.0f} ms; {PARTITION_LIMIT:.0f} WCU/s per partition; "
        f"{rules.attempts} attempts with records.retry_delay, then Lambda retries after "
        f"{', '.join(f'{d:.0f}' for d in rules.lambda_retry_delays)} s, then dead letter."
    )
    rows, hot_rows = [], []
    problem = False
    for concurrency in CONCURRENCY:
        before = simulate(old, concurrency, rules)
        after = simulate(new, concurrency, rules)
        for name, r in (("before", before), ("after", after)):
            n = r.images
            rows.append(
                [
                    name,
                    concurrency,
                    f"{r.images_per_s:,.1f}",
                    report.ratio(r.images_per_s, before.images_per_s),
                    f"{r.conflicts / n:.3f}",
                    f"{r.throttles / n:.3f}",
                    f"{r.retries / n:.3f}",
                    f"{r.lambda_retries / n:.3f}",
                    r.dead_lettered,
                ]
            )
            item, share = r.hottest_item()
            partition, peak, wcu = r.hottest_partition()
            hot_rows.append(
                [
                    name,
                    concurrency,
                    f"{share:.1%}",
                    f"{item[0]} / {item[1]}"[:34],
                    partition.split(":", 1)[1][:24],
                    f"{peak:,.0f}",
                    f"{wcu:.2f}",
                ]
            )
        if concurrency == 64:
            conflicts = after.conflicts / after.images
            share = after.hottest_item()[1]
            if conflicts > 0.05 or share > 0.1:
                report.warning(
                    f"after sharding at 64 concurrent: {conflicts:.3f} conflicts per image, "
                    f"hottest item in {share:.1%} of ingests (goal: near 0, a small fraction)"
                )
                problem = True
    print()
    report.table(
        [
            "design",
            "concurrent",
            "images/s",
            "vs before",
            "conflicts/img",
            "throttles/img",
            "retries/img",
            "Lambda retries/img",
            "dead",
        ],
        rows,
    )
    print()
    report.table(
        [
            "design",
            "concurrent",
            "hot item share",
            "hottest item",
            "hottest partition",
            "peak WCU/s",
            "WCU/img there",
        ],
        hot_rows,
        align="lrrllrr",
    )
    report.note(
        "images/s: committed images over the virtual time until the last one settled "
        "(Lambda retries included). hot item share: the share of committed ingests that "
        "wrote the most written item "
        "(after: 1/(STATS_SHARDS x STATS_SLOTS) expected, plus sampling noise); peak WCU/s: "
        "the most write units one partition took in a virtual second; WCU/img there: that "
        "partition's write units per committed image."
    )
    print()
    for name, txns in (("before", old), ("after", new)):
        partition, ceiling = static_ceiling(txns)
        wcu = sum(w for t in txns for _, w in t.wcu) / len(txns)
        report.note(
            f"{name}: {wcu:.1f} WCU per image in all; busiest shared partition "
            f"{partition.split(':', 1)[1]}, which reaches {PARTITION_LIMIT:.0f} WCU/s at "
            f"{ceiling:,.0f} images/s (writes spread evenly in time)."
        )
    session_wcu = max(w for t in new for p, w in t.wcu if p.startswith("TABLE:UPLOAD#"))
    report.note(
        f"One upload session is one partition (UPLOAD#<id>): {session_wcu} WCU per file, so a "
        f"single session ingests at most {PARTITION_LIMIT / session_wcu:,.0f} files/s; "
        "sessions in parallel add up."
    )
    return problem
