"""The analysis cache: a module-level LRU in each warm container, backed by DynamoDB.

Lambda runs many containers and recycles them, so the in-memory tier alone would miss often;
the shared tier (TTL'd items) lets any container answer a URL another one analyzed.
Only successful analyses are cached.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from imgsvc import aws
from imgsvc.config import get_settings
from imgsvc.observability import logger
from imgsvc.shards import index_partitions, merged_newest, shard_of

V = TypeVar("V")
CACHE_PARTITION = "CACHE"  # GSI1PK of the shared tier's listing (before sharding: the only one)


@dataclass
class _Entry(Generic[V]):
    value: V
    size: int
    expires: float


class LRUCache(Generic[V]):
    """A thread-safe LRU bounded in entries and bytes, whose entries expire after a TTL.

    Written here rather than taken from functools.lru_cache because it must bound bytes as
    well as entries and expire entries (the runtime layer carries no cachetools).
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1 or ttl_seconds <= 0:
            raise ValueError("max_entries, max_bytes and ttl_seconds must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> V | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry.expires <= self._clock():
                self._remove(key)
                return None
            self._data.move_to_end(key)
            return entry.value

    def put(self, key: str, value: V, size: int, ttl: float | None = None) -> bool:
        """Store value for ttl seconds (default: the cache's TTL).

        False when it alone is larger than the whole cache (not stored).
        """
        if size > self.max_bytes:
            return False
        ttl = self.ttl_seconds if ttl is None else min(ttl, self.ttl_seconds)
        with self._lock:
            if key in self._data:
                self._remove(key)
            self._data[key] = _Entry(value, size, self._clock() + ttl)
            self._bytes += size
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._data)))
            return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _remove(self, key: str) -> None:
        entry = self._data.pop(key)
        self._bytes -= entry.size


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class AnalysisCache:
    """Analysis results by URL: the warm-container LRU first, then the shared DynamoDB tier."""

    def __init__(self, local: LRUCache[dict[str, Any]] | None = None) -> None:
        s = get_settings()
        # "is None", not "or": an empty LRUCache is falsy (it has a length).
        self.local: LRUCache[dict[str, Any]] = (
            local
            if local is not None
            else LRUCache(s.cache_max_entries, s.cache_max_bytes, s.cache_ttl_seconds)
        )

    def get(self, url: str) -> tuple[dict[str, Any] | None, str]:
        """The cached result and which tier answered: "memory", "shared" or "miss"."""
        value = self.local.get(url)
        if value is not None:
            return value, "memory"
        item = (
            aws.table().get_item(Key={"PK": f"CACHE#{url_key(url)}", "SK": "ANALYSIS"}).get("Item")
        )
        # DynamoDB deletes expired items lazily (up to days later): check the TTL ourselves.
        remaining = int(item["expire_at"]) - time.time() if item else 0
        if remaining <= 0:
            return None, "miss"
        result = json.loads(item["result"])
        # Keep the shared entry's expiry: a copy must not outlive its source.
        self.local.put(url, result, len(item["result"]) + len(url), ttl=remaining)
        return result, "shared"

    def put(self, url: str, result: dict[str, Any]) -> None:
        encoded = json.dumps(result, sort_keys=True)
        self.local.put(url, result, len(encoded) + len(url))
        now = datetime.now(UTC)
        digest = url_key(url)
        try:
            self._put_shared(url, digest, encoded, now)
        except (BotoCoreError, ClientError):
            # The cache is an optimisation: a failed write must not fail the analysis.
            logger.warning("could not write the shared analysis cache", exc_info=True)

    def _put_shared(self, url: str, digest: str, encoded: str, now: datetime) -> None:
        aws.table().put_item(
            Item={
                "PK": f"CACHE#{digest}",
                "SK": "ANALYSIS",
                "GSI1PK": f"{CACHE_PARTITION}#{shard_of(digest, get_settings().index_shards)}",
                "GSI1SK": f"{now.isoformat()}#{digest}",
                "url": url,
                "result": encoded,
                "cached_at": now.isoformat(),
                "expire_at": int(now.timestamp()) + int(self.local.ttl_seconds),
            }
        )


def cached_urls(limit: int = 100) -> list[str]:
    """URLs the cache holds, newest first, from the shared tier (any container's analyses).

    The index is spread over INDEX_SHARDS partitions (``CACHE#<k>``, k from the URL's digest)
    plus the legacy unsharded ``CACHE`` one; their newest-first queries are merged.
    """
    now = time.time()
    items, _ = merged_newest(
        index_partitions(CACHE_PARTITION, get_settings().index_shards),
        limit,
        keep=lambda item: int(item["expire_at"]) > now,
    )
    return [item["url"] for item in items]
