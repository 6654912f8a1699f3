"""Settings, read from the environment each time so tests and the local stack can change them.

Every setting is documented in the README with its default; template.yaml sets them in AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    upload_prefix: str
    image_prefix: str
    rendition_prefix: str
    max_upload_bytes: int
    max_pixels: int
    allow_private_urls: bool
    fetch_timeout_seconds: float
    fetch_max_redirects: int
    analyze_max_bytes: int
    cache_max_entries: int
    cache_max_bytes: int
    cache_ttl_seconds: int
    stats_day_shards: int
    stats_shards: int
    stats_slots: int
    index_shards: int
    content_url_ttl_seconds: int
    link_window_seconds: int
    tracing_enabled: bool
    migration_max_receives: int = 3
    max_files_per_session: int = 1000


def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "imgsvc"),
        bucket_name=os.environ.get("BUCKET_NAME", "imgsvc"),
        upload_prefix=os.environ.get("UPLOAD_PREFIX", "uploads/"),
        image_prefix=os.environ.get("IMAGE_PREFIX", "images/"),
        rendition_prefix=os.environ.get("RENDITION_PREFIX", "renditions/"),
        max_upload_bytes=_int("MAX_UPLOAD_BYTES", 25 * MIB),
        max_pixels=_int("MAX_PIXELS", 100_000_000),
        allow_private_urls=_bool("ALLOW_PRIVATE_URLS", False),
        fetch_timeout_seconds=_float("FETCH_TIMEOUT_SECONDS", 10.0),
        fetch_max_redirects=_int("FETCH_MAX_REDIRECTS", 5),
        analyze_max_bytes=_int("ANALYZE_MAX_BYTES", 4 * MIB),
        cache_max_entries=_int("CACHE_MAX_ENTRIES", 512),
        cache_max_bytes=_int("CACHE_MAX_BYTES", 1 * MIB),
        cache_ttl_seconds=_int("CACHE_TTL_SECONDS", 3600),
        stats_day_shards=_int("STATS_DAY_SHARDS", 10),
        stats_shards=_int("STATS_SHARDS", 16),
        stats_slots=_int("STATS_SLOTS", 16),
        index_shards=_int("INDEX_SHARDS", 8),
        content_url_ttl_seconds=_int("CONTENT_URL_TTL_SECONDS", 300),
        # Thumbnail and rendition links are signed at the start of a window this long, so the
        # same link (and the browser's cached copy) comes back until the window ends.
        link_window_seconds=_int("LINK_WINDOW_SECONDS", 3600),
        tracing_enabled=_bool("TRACING_ENABLED", False),
        # The MigrationQueue's maxReceiveCount: the receive after which a message is dead.
        migration_max_receives=_int("MIGRATION_MAX_RECEIVES", 3),
        # Files one upload session may hold; lowered only to test clients that split batches.
        max_files_per_session=_int("MAX_FILES_PER_SESSION", 1000),
    )
