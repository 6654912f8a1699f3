"""Statistics read from the counters ingest maintains: the cost is the same at any size.

A request makes a fixed number of calls whatever the number of images: one Query per counter
partition (``STATS#SHARD#<p>``, all its slots: the window's days, the formats, the total and
at most CAMERA_NAMES_PER_SHARD camera names, in one page), plus the counters written before
sharding, read as one more shard (30 x STATS_DAY_SHARDS day items and the total in
BatchGetItem calls, one bounded Query each for formats and camera models).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from imgsvc import aws, records
from imgsvc.config import get_settings
from imgsvc.records import CAMERA_PREFIX, TOTAL, batch_get, day_sk, stats_pk

DAYS = 30
TOP_CAMERAS = 10
# Camera names are EXIF text anyone can write: a shard's read stops after this many names
# (alphabetical), so junk names bound what /stats reads instead of growing it.
CAMERA_NAMES_PER_SHARD = 100
# Days in the window, room for every format, the total: what precedes the cameras in a shard.
_BEFORE_CAMERAS = DAYS + 16 + 1
_READERS = 8  # shard partitions read at once


def _query_page(pk: str, limit: int, first_sk: str | None = None) -> list[dict[str, Any]]:
    """One page of a partition. Through the client: boto3 clients are thread-safe, resources
    are not, and the shard partitions are read in parallel."""
    condition = Key("PK").eq(pk)
    if first_sk is not None:
        condition = condition & Key("SK").gte(first_sk)
    page = aws.ddb_client().query(
        TableName=get_settings().table_name, KeyConditionExpression=condition, Limit=limit
    )
    return page.get("Items", [])


def _last_days(today: date) -> list[str]:
    return [(today - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]


def _summary(
    per_day: dict[str, int], formats: dict[str, int], cameras: dict[str, int], total: int
) -> dict[str, Any]:
    """The /stats answer; ties rank by name so the answer is deterministic."""
    formats = {f: n for f, n in formats.items() if n > 0}
    cameras = {c: n for c, n in cameras.items() if n > 0}
    ranked = sorted(cameras.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "uploads_per_day": per_day,
        "most_popular_format": min(formats, key=lambda f: (-formats[f], f)) if formats else None,
        "top_camera_models": [name for name, _ in ranked[:TOP_CAMERAS]],
        "formats": dict(sorted(formats.items(), key=lambda kv: (-kv[1], kv[0]))),
        "total_images": total,
    }


def _legacy(days: list[str], per_day: dict[str, int], formats: Counter, cameras: Counter) -> int:
    """Add the counters of the unsharded layout (tables written before sharding); the total."""
    settings = get_settings()
    keys = [
        {"PK": f"STATS#DAY#{day}", "SK": f"SHARD#{shard}"}
        for day in days
        for shard in range(settings.stats_day_shards)
    ] + [{"PK": "STATS#TOTAL", "SK": "TOTAL"}]
    total = 0
    for start in range(0, len(keys), 100):
        for item in batch_get(settings.table_name, keys[start : start + 100]):
            if item["PK"] == "STATS#TOTAL":
                total += int(item["count"])
            else:
                per_day[item["PK"].removeprefix("STATS#DAY#")] += int(item["count"])
    for item in _query_page("STATS#FORMAT", _BEFORE_CAMERAS):
        formats[item["SK"]] += int(item["count"])
    for item in _query_page("STATS#CAMERA", CAMERA_NAMES_PER_SHARD):  # a shard too
        cameras[item["SK"]] += int(item["count"])
    return total


def get_stats(today: date | None = None) -> dict[str, Any]:
    today = today or records.now_utc().date()
    days = _last_days(today)
    per_day = dict.fromkeys(days, 0)
    formats: Counter[str] = Counter()
    cameras: Counter[str] = Counter()
    total = _legacy(days, per_day, formats, cameras)
    settings = get_settings()
    limit = (_BEFORE_CAMERAS + CAMERA_NAMES_PER_SHARD) * settings.stats_slots
    # Sort keys: DAY#<day>#<s> < FORMAT#<f>#<s> < TOTAL#<s> < ~CAMERA#<name>#<s>; days
    # before the window are skipped by the key condition.
    with ThreadPoolExecutor(max_workers=min(_READERS, settings.stats_shards)) as pool:
        pages = pool.map(
            lambda shard: _query_page(stats_pk(shard), limit, day_sk(days[0])),
            range(settings.stats_shards),
        )
    for page in pages:
        names: set[str] = set()
        for item in page:
            counter, count = item["SK"].rpartition("#")[0], int(item["count"])  # drop the slot
            if counter.startswith("DAY#"):
                day = counter.removeprefix("DAY#")
                if day in per_day:
                    per_day[day] += count
            elif counter.startswith("FORMAT#"):
                formats[counter.removeprefix("FORMAT#")] += count
            elif counter == TOTAL:
                total += count
            elif counter.startswith(CAMERA_PREFIX):
                name = counter.removeprefix(CAMERA_PREFIX)
                if name in names or len(names) < CAMERA_NAMES_PER_SHARD:
                    names.add(name)
                    cameras[name] += count
    return _summary(per_day, dict(formats), dict(cameras), total)


def recount(today: date | None = None) -> dict[str, Any]:
    """The same statistics from a full scan of the records, to audit the counters.

    Costs a scan of the table: for tests and operators, never for GET /stats.
    """
    today = today or records.now_utc().date()
    days = _last_days(today)
    per_day = dict.fromkeys(days, 0)
    formats: dict[str, int] = {}
    cameras: dict[str, int] = {}
    total = 0
    for item in aws.all_items(aws.table().scan):
        if item["PK"].startswith("IMAGE#"):
            total += 1
            formats[item["format"]] = formats.get(item["format"], 0) + 1
            if item.get("camera"):
                cameras[item["camera"]] = cameras.get(item["camera"], 0) + 1
        elif item["SK"].startswith("FILE#") and item.get("status") == "done":
            day = item.get("day")
            if day in per_day:
                per_day[day] += 1
    return _summary(per_day, formats, cameras, total)
