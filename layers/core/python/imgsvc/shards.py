"""Write sharding: which shard an id falls in, and newest-first reads merged across shards.

Every ingest used to write the same few DynamoDB items and index partitions; spreading them
over shards picked from the (uniformly distributed, sha256) id removes the hot spots. A
reader then queries every shard and merges the answers, which is what ``merged_newest``
does for the GSI1 listings (images, analysis cache).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.conditions import Key

from imgsvc import aws


def shard_of(hex_id: str, shards: int) -> int:
    """The shard of a hex id (a sha256 digest): fixed per id, uniform over ids."""
    return int(hex_id[:8], 16) % shards


def index_partitions(prefix: str, shards: int) -> list[str]:
    """Every GSI1PK of a sharded listing, and the unsharded legacy partition last.

    Items written before sharding keep ``GSI1PK = <prefix>``; reading that partition too is
    what lets an existing table keep working without a backfill.
    """
    return [f"{prefix}#{k}" for k in range(shards)] + [prefix]


def _newest_first(
    partition: str, boundary: str | None, first_page: int, max_page: int
) -> Iterator[dict[str, Any]]:
    """One partition's GSI1 items, newest first, strictly older than ``boundary``.

    Pages start at ``first_page`` items (about this partition's share of the answer) and
    double up to ``max_page``: a uniform spread costs one small query per partition, a skewed
    one (a table still mostly in the legacy partition) a few more queries, never many."""
    condition = Key("GSI1PK").eq(partition)
    if boundary is not None:
        condition = condition & Key("GSI1SK").lt(boundary)
    yield from aws.all_items(
        aws.table().query,
        next_limit=lambda limit: min(2 * limit, max_page),
        IndexName="GSI1",
        KeyConditionExpression=condition,
        ScanIndexForward=False,
        Limit=first_page,
    )


def merged_newest(
    partitions: list[str],
    limit: int,
    boundary: str | None = None,
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` kept items, newest first (by GSI1SK) over all partitions, and whether
    more follow.

    A k-way merge of per-partition queries (heapq.merge is lazy: a partition is read a page at
    a time, only as far as the merge needs). GSI1SK is ``<timestamp>#<id>``, unique per item,
    so the last GSI1SK returned is a complete cursor: the next page is everything below it.
    """
    # One more than asked, so "more follow" is known without an empty last page.
    wanted = limit + 1
    first = min(wanted, -(-wanted // len(partitions)) + 1)
    streams = [_newest_first(p, boundary, first, wanted) for p in partitions]
    merged = heapq.merge(*streams, key=lambda item: item["GSI1SK"], reverse=True)
    items = list(itertools.islice(filter(keep, merged), limit + 1))
    return items[:limit], len(items) > limit
