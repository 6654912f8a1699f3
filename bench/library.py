"""Sections 5 and 6: GET /stats and similar-image queries as the library grows to 2,000 images.

The library is real records: ``records.create_session`` + ``records.commit_ingest`` with
synthetic metadata (like tests/integration/test_records.py's ``meta()``), in moto's mock. It is
seeded once and shared by both sections.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

from bench import report
from bench.env import count_requests, moto_dynamodb_time, moto_stack

SMALL = 20
LARGE = 2_000
STATS_RUNS = 9
SIMILAR_QUERIES = 8
SCAN_RUNS = 1  # ~10 s each under moto
MAX_DISTANCE = 8
LIMIT = 20
FILES_PER_SESSION = 99  # a session is one transaction: the session item + its files <= 100
NEAR_EVERY = 5  # every 5th image is a near-duplicate (1-8 bits off) of an earlier one

FORMATS = ["JPEG"] * 6 + ["PNG"] * 2 + ["WEBP", "GIF"]
CAMERAS = [
    "Canon - Canon EOS R5",
    "NIKON CORPORATION - NIKON D850",
    "Apple - iPhone 15 Pro",
    "SONY - ILCE-7M4",
    "Google - Pixel 8",
    None,
]


def meta(n: int, phash: int, rng: random.Random) -> dict[str, Any]:
    """Metadata as imaging.inspect_image describes an image (cf. test_records.meta)."""
    camera = rng.choice(CAMERAS)
    fmt = rng.choice(FORMATS) if camera is None else "JPEG"
    seed = f"bench-image-{n}".encode()
    return {
        "sha256": hashlib.sha256(seed).hexdigest(),
        "sha1": hashlib.sha1(seed).hexdigest(),
        "format": fmt,
        "width": 4000,
        "height": 3000,
        "mode": "RGB",
        "bytes": rng.randrange(500_000, 6_000_000),
        "make": camera.split(" - ")[0] if camera else None,
        "model": camera.split(" - ")[1] if camera else None,
        "camera": camera,
        "orientation": 1,
        "taken_at": None,
        "display_width": 4000,
        "display_height": 3000,
        "phash": f"{phash:016x}",
    }


@contextmanager
def _moto_without_rollback_copies() -> Iterator[None]:
    """For seeding only: moto's transact_write_items deep-copies the whole table before each
    transaction (its rollback copy), which makes seeding quadratic in the table size (300
    images took ~250 s without this, ~4 s with it). Seeding transactions all succeed, so the
    copy is not needed; identity copies make it linear. The patch touches only the ``copy``
    name in moto's DynamoDB models module and is undone before anything is measured."""
    from moto.dynamodb import models

    shallow = SimpleNamespace(deepcopy=lambda value, memo=None: value)
    with mock.patch.object(models, "copy", shallow):
        yield


class Library:
    """A moto stack holding ``count`` seeded images; opened on first use, closed by close()."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._open = False
        self._rng = random.Random(2000)
        self.image_ids: list[str] = []
        self.phashes: list[int] = []
        self.near_duplicates: list[int] = []  # indexes of images planted near another
        self.seconds_seeding = 0.0

    @property
    def count(self) -> int:
        return len(self.image_ids)

    def close(self) -> None:
        self._stack.close()

    def ensure(self, target: int) -> None:
        """Seed images until the library holds ``target``."""
        if not self._open:
            self._stack.enter_context(moto_stack())
            self._open = True
        if self.count < target:
            elapsed, _ = report.timed(lambda: self._seed(target))
            self.seconds_seeding += elapsed

    def _seed(self, target: int) -> None:
        from imgsvc import records
        from imgsvc.records import IngestSource

        rng = self._rng
        with _moto_without_rollback_copies():
            while self.count < target:
                batch = min(FILES_PER_SESSION, target - self.count)
                upload_id = f"bench-{self.count:05d}"
                files = [
                    {"filename": f"img-{i}.jpg", "content_type": "image/jpeg", "size": None}
                    for i in range(batch)
                ]
                expires = records.now_utc() + timedelta(hours=1)
                records.create_session(upload_id, expires, files)
                for i in range(batch):
                    n = self.count
                    if n >= 50 and n % NEAR_EVERY == 0:
                        phash = self.phashes[rng.randrange(n)]
                        for bit in rng.sample(range(64), rng.randint(1, MAX_DISTANCE)):
                            phash ^= 1 << bit
                        self.near_duplicates.append(n)
                    else:
                        phash = rng.getrandbits(64)
                    image, duplicate = records.commit_ingest(
                        meta(n, phash, rng), IngestSource(upload_id, f"img-{i}.jpg")
                    )
                    if duplicate:
                        raise RuntimeError(f"seed image {n} came back as a duplicate")
                    self.image_ids.append(image["image_id"])
                    self.phashes.append(phash)


@dataclass
class Measured:
    """One operation called repeatedly: per-call times, requests and items."""

    seconds: list[float]
    in_moto: list[float]  # of which inside moto's DynamoDB emulation
    requests: dict[str, int]  # per call, by operation
    items: float  # items in the responses, per call

    @property
    def median(self) -> float:
        return report.median(self.seconds)

    @property
    def outside_moto(self) -> float:
        return report.median([t - m for t, m in zip(self.seconds, self.in_moto, strict=True)])


def _measure(calls: list[Callable[[], Any]]) -> tuple[Measured, list[Any]]:
    """Run each call once: wall time, time inside moto, DynamoDB requests and items."""
    from imgsvc import aws

    seconds, in_moto, answers = [], [], []
    with (
        moto_dynamodb_time() as moto,
        count_requests(aws.dynamodb().meta.client, "dynamodb") as counts,
    ):
        for call in calls:
            moto.lap()
            elapsed, answer = report.timed(call)
            seconds.append(elapsed)
            in_moto.append(moto.lap())
            answers.append(answer)
    n = len(calls)
    per_call = {op: round(count / n) for op, count in sorted(counts.ops.items())}
    return Measured(seconds, in_moto, per_call, counts.items / n), answers


def stats(library: Library) -> None:
    from imgsvc.stats import get_stats

    results: dict[int, Measured] = {}
    for count in (SMALL, LARGE):
        library.ensure(count)
        get_stats()  # warm-up
        measured, answers = _measure([get_stats] * STATS_RUNS)
        if answers[-1]["total_images"] != count:
            raise RuntimeError(f"total_images {answers[-1]['total_images']}, expected {count}")
        results[count] = measured

    report.note(
        f"imgsvc.stats.get_stats() (what GET /stats returns), median of {STATS_RUNS} runs at "
        "each size; DynamoDB requests and returned items counted on aws.dynamodb().meta.client."
    )
    report.note(
        f"Library seeded through records.create_session + records.commit_ingest in "
        f"{report.ms(library.seconds_seeding)} (moto's rollback copies disabled while seeding)."
    )
    small = results[SMALL]
    rows = [
        [
            f"{count:,}",
            report.ms(m.median),
            report.ms(report.p90(m.seconds)),
            report.ms(report.median(m.in_moto)),
            report.ms(m.outside_moto),
            sum(m.requests.values()),
            ", ".join(f"{op} {n}" for op, n in m.requests.items()),
            f"{m.items:.0f}",
            report.ratio(m.median, small.median),
        ]
        for count, m in results.items()
    ]
    report.table(
        [
            "images",
            "median",
            "p90",
            "in moto",
            "outside moto",
            "requests",
            "by operation",
            "items",
            f"vs {SMALL}",
        ],
        rows,
        "rrrrrrlrr",
    )
    large = results[LARGE]
    report.note(
        f"{LARGE:,} vs {SMALL} images: latency {report.ratio(large.median, small.median)}, "
        f"outside moto {report.ratio(large.outside_moto, small.outside_moto)}, requests "
        f"{report.ratio(sum(large.requests.values()), sum(small.requests.values()))}, items "
        f"{report.ratio(large.items, small.items)}."
    )
    report.note(
        "The latency growth is moto's: its Query sorts the whole table on every call "
        "(DynamoDB reads only the partition). The request count is what scales on AWS."
    )


def _scan_table() -> tuple[int, list[dict[str, Any]]]:
    from imgsvc import aws

    count = 0
    images = []
    kwargs: dict[str, Any] = {}
    while True:
        page = aws.table().scan(**kwargs)
        count += len(page["Items"])
        images += [i for i in page["Items"] if i["PK"].startswith("IMAGE#")]
        if "LastEvaluatedKey" not in page:
            return count, images
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _brute_force(image_id: str, images: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """find_similar's answer computed from a scan: every image within MAX_DISTANCE."""
    from imgsvc.phash_index import hamming

    target = next(i["phash"] for i in images if i["image_id"] == image_id)
    found = [
        (i["image_id"], hamming(target, i["phash"])) for i in images if i["image_id"] != image_id
    ]
    near = sorted(((i, d) for i, d in found if d <= MAX_DISTANCE), key=lambda x: (x[1], x[0]))
    return near[:LIMIT]


def similar(library: Library) -> None:
    from imgsvc.similar import find_similar

    library.ensure(LARGE)
    rng = random.Random(6)
    # Half planted near-duplicates (they have neighbours), half arbitrary images.
    planted = rng.sample(library.near_duplicates, SIMILAR_QUERIES // 2)
    others = rng.sample(range(library.count), SIMILAR_QUERIES - len(planted))
    queries = [library.image_ids[n] for n in planted + others]

    # No warm-up call: section 5 already exercised the same clients and moto paths.
    query, results = _measure(
        [lambda i=image_id: find_similar(i, MAX_DISTANCE, LIMIT) for image_id in queries]
    )
    scan, scans = _measure([_scan_table] * SCAN_RUNS)
    scan_items, images = scans[0]
    items_read = [r.items_read for r in results]
    matches = [len(r.matches) for r in results]
    agree = sum(
        [(m["image_id"], m["distance"]) for m in r.matches] == _brute_force(i, images)
        for i, r in zip(queries, results, strict=True)
    )

    read_median = report.median(items_read)
    report.note(
        f"imgsvc.similar.find_similar(image_id, {MAX_DISTANCE}, {LIMIT}) over {library.count:,} "
        f"images, {len(queries)} queries ({len(planted)} of planted near-duplicates), vs a "
        f"paginated full table scan ({SCAN_RUNS} run)."
    )
    rows = []
    for name, items, m in (
        (
            "find_similar (phash index)",
            f"{read_median:,.0f} (min {min(items_read)}, max {max(items_read)})",
            query,
        ),
        ("full table scan", f"{scan_items:,}", scan),
    ):
        rows.append(
            [
                name,
                items,
                report.ms(m.median),
                report.ms(report.median(m.in_moto)),
                report.ms(m.outside_moto),
                ", ".join(f"{op} {n}" for op, n in m.requests.items()),
            ]
        )
    report.table(
        ["query", "items read", "median", "in moto", "outside moto", "requests per call"],
        rows,
        "lrrrrl",
    )
    report.note(
        f"Items read: find_similar / scan = {report.ratio(read_median, scan_items)} "
        f"({scan_items / read_median:,.0f}x fewer). Latency: "
        f"{report.ratio(query.median, scan.median)}; outside moto "
        f"{report.ratio(query.outside_moto, scan.outside_moto)}."
    )
    report.note(
        f"Matches per query: median {report.median(matches):.0f}, max {max(matches)}; "
        f"same answer as brute force over the scan: {agree}/{len(queries)} queries."
    )
    report.note(
        "Under moto each of find_similar's Queries sorts the whole table, so its latency here "
        "tracks the table size; on DynamoDB it tracks the items read."
    )
    if agree != len(queries):
        raise RuntimeError(f"find_similar disagrees with brute force on {len(queries) - agree}")
