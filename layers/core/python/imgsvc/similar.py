"""Similar images and the distance of two images, from the phash index (imgsvc.phash_index)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from imgsvc import aws, records
from imgsvc.phash_index import MAX_DISTANCE, hamming, index_keys

DEFAULT_THRESHOLD = 10


def diff(image_id: str, other_id: str, threshold: int) -> dict[str, Any]:
    """Compare two stored images by their stored perceptual hashes: nothing is downloaded."""
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
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be 0..{MAX_DISTANCE}")
    source = records.get_image(image_id)
    target = source["phash"]
    distances: dict[str, int] = {}
    items_read = 0
    # max_distance + 1 chunks suffice: a neighbour matches at least one of them exactly.
    for pk in index_keys(target)[: max_distance + 1]:
        for item in aws.all_items(aws.table().query, KeyConditionExpression=Key("PK").eq(pk)):
            items_read += 1
            if item["SK"] != image_id:
                d = hamming(target, item["phash"])
                if d <= max_distance:
                    distances[item["SK"]] = d
    nearest = sorted(distances.items(), key=lambda kv: (kv[1], kv[0]))[:limit]
    images = records.get_images([i for i, _ in nearest])
    matches = [
        {"image_id": i, "distance": d, "image": images[i]} for i, d in nearest if i in images
    ]
    return SimilarResult(image_id, target, matches, items_read)
