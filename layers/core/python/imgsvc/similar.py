"""Multi-index hashing of 64-bit perceptual hashes, for similar-image queries without a scan.

The hash is split into CHUNKS disjoint bit ranges. If two hashes differ in at most d bits,
then by pigeonhole at least CHUNKS - d chunks are equal, so looking up any d + 1 chunks
exactly finds every neighbour within distance d (d < CHUNKS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Nine chunks (one of 8 bits, eight of 7) support max_distance up to 8 with ~1/128 of the
# library per bucket.
CHUNK_BITS = (8, 7, 7, 7, 7, 7, 7, 7, 7)
CHUNKS = len(CHUNK_BITS)
MAX_DISTANCE = CHUNKS - 1


def chunk_values(phash_hex: str) -> list[int]:
    value = int(phash_hex, 16)
    out = []
    shift = 64
    for bits in CHUNK_BITS:
        shift -= bits
        out.append((value >> shift) & ((1 << bits) - 1))
    return out


def index_keys(phash_hex: str) -> list[str]:
    """The partition keys under which an image is indexed, one per chunk."""
    return [f"PHASH#{i}#{v:02x}" for i, v in enumerate(chunk_values(phash_hex))]


_HEX64 = re.compile(r"[0-9a-fA-F]{16}")


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two 64-bit hashes given as 16 hex characters.

    Pure Python, so functions without the imaging layer can use it. Raises ValueError unless
    both are exactly 16 hex digits: ``int(s, 16)`` alone would also accept "0x", "_", signs,
    spaces and other lengths.
    """
    for name, value in (("a_hex", a_hex), ("b_hex", b_hex)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise ValueError(f"{name} must be exactly 16 hex characters, got {value!r}")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


DEFAULT_THRESHOLD = 10


def diff(image_id: str, other_id: str, threshold: int) -> dict[str, Any]:
    """Compare two stored images by their stored perceptual hashes: nothing is downloaded."""
    from imgsvc import records

    a = records.get_image(image_id)
    b = records.get_image(other_id)
    distance = hamming(a["phash"], b["phash"])
    return {
        "algorithm": "phash",
        "distance": distance,
        "similar": distance <= threshold,
        "threshold": threshold,
        "hashes": {image_id: a["phash"], other_id: b["phash"]},
    }


@dataclass
class SimilarResult:
    image_id: str
    phash: str
    matches: list[dict[str, Any]]  # {"image_id", "distance", "image"}, nearest first
    items_read: int  # index items read: bounded by the buckets, not the library


def find_similar(image_id: str, max_distance: int, limit: int) -> SimilarResult:
    """Images within max_distance of image_id's phash, nearest first, via the chunk index."""
    from boto3.dynamodb.conditions import Key

    from imgsvc import aws, records

    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be 0..{MAX_DISTANCE}")
    source = records.get_image(image_id)
    target = source["phash"]
    distances: dict[str, int] = {}
    items_read = 0
    # max_distance + 1 chunks suffice: a neighbour matches at least one of them exactly.
    for pk in index_keys(target)[: max_distance + 1]:
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("PK").eq(pk)}
        while True:
            page = aws.table().query(**kwargs)
            for item in page.get("Items", []):
                items_read += 1
                if item["SK"] != image_id:
                    d = hamming(target, item["phash"])
                    if d <= max_distance:
                        distances[item["SK"]] = d
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    nearest = sorted(distances.items(), key=lambda kv: (kv[1], kv[0]))[:limit]
    images = records.get_images([i for i, _ in nearest])
    matches = [
        {"image_id": i, "distance": d, "image": images[i]} for i, d in nearest if i in images
    ]
    return SimilarResult(image_id, target, matches, items_read)
