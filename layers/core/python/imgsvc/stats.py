"""Statistics read from the counters ingest maintains: the cost is the same at any size.

A request reads 30 days x STATS_DAY_SHARDS day-counter items plus the total in BatchGetItem
calls, and one Query each for formats and camera models (whose size grows with the number
of distinct formats and models, never with the number of images).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from imgsvc import aws
from imgsvc.config import get_settings
from imgsvc.records import batch_get, now_utc

DAYS = 30
TOP_CAMERAS = 10


def _query_counts(pk: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key("PK").eq(pk)}
    while True:
        page = aws.table().query(**kwargs)
        for item in page.get("Items", []):
            if int(item["count"]) > 0:
                counts[item["SK"]] = int(item["count"])
        if "LastEvaluatedKey" not in page:
            return counts
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _last_days(today: date) -> list[str]:
    return [(today - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]


def _summary(
    per_day: dict[str, int], formats: dict[str, int], cameras: dict[str, int], total: int
) -> dict[str, Any]:
    """The /stats answer; ties rank by name so the answer is deterministic."""
    ranked = sorted(cameras.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "uploads_per_day": per_day,
        "most_popular_format": min(formats, key=lambda f: (-formats[f], f)) if formats else None,
        "top_camera_models": [name for name, _ in ranked[:TOP_CAMERAS]],
        "formats": dict(sorted(formats.items(), key=lambda kv: (-kv[1], kv[0]))),
        "total_images": total,
    }


def get_stats(today: date | None = None) -> dict[str, Any]:
    settings = get_settings()
    today = today or now_utc().date()
    days = _last_days(today)
    keys = [
        {"PK": f"STATS#DAY#{day}", "SK": f"SHARD#{shard}"}
        for day in days
        for shard in range(settings.stats_day_shards)
    ] + [{"PK": "STATS#TOTAL", "SK": "TOTAL"}]
    per_day = dict.fromkeys(days, 0)
    total = 0
    for start in range(0, len(keys), 100):
        for item in batch_get(settings.table_name, keys[start : start + 100]):
            if item["PK"] == "STATS#TOTAL":
                total = int(item["count"])
            else:
                per_day[item["PK"].removeprefix("STATS#DAY#")] += int(item["count"])
    formats = _query_counts("STATS#FORMAT")
    cameras = _query_counts("STATS#CAMERA")
    return _summary(per_day, formats, cameras, total)


def recount(today: date | None = None) -> dict[str, Any]:
    """The same statistics from a full scan of the records, to audit the counters.

    Costs a scan of the table: for tests and operators, never for GET /stats.
    """
    today = today or now_utc().date()
    days = _last_days(today)
    per_day = dict.fromkeys(days, 0)
    formats: dict[str, int] = {}
    cameras: dict[str, int] = {}
    total = 0
    kwargs: dict[str, Any] = {}
    while True:
        page = aws.table().scan(**kwargs)
        for item in page.get("Items", []):
            if item["PK"].startswith("IMAGE#"):
                total += 1
                formats[item["format"]] = formats.get(item["format"], 0) + 1
                if item.get("camera"):
                    cameras[item["camera"]] = cameras.get(item["camera"], 0) + 1
            elif item["SK"].startswith("FILE#") and item.get("status") == "done":
                day = item.get("day")
                if day in per_day:
                    per_day[day] += 1
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return _summary(per_day, formats, cameras, total)
