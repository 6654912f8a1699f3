"""Sections 1 and 2: POST /analyze's latency per cache tier, and bytes read from a large image.

Driven through ``imgsvc.analyze.analyze_url`` (the domain function the handler calls), so the
numbers are the service's own work without the Powertools resolver around it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench import report
from bench.env import moto_dynamodb_time, moto_stack
from tests.support.photo_server import PhotoServer

RUNS = 60  # per tier; every miss needs its own URL
PHOTO = "chelsea_canon.jpg"
NOISE_SIZE = (4800, 3600)  # random noise at quality 95: ~1.17 bytes/pixel, ~20 MB


@contextmanager
def photo_server() -> Iterator[PhotoServer]:
    server = PhotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _analyze(url: str, cache: Any, expected_tier: str) -> tuple[float, int]:
    from imgsvc.analyze import analyze_url

    start = time.perf_counter()
    _, tier, bytes_read = analyze_url(url, cache)
    elapsed = time.perf_counter() - start
    if tier != expected_tier:
        raise RuntimeError(f"{url}: expected a {expected_tier} answer, got {tier}")
    return elapsed, bytes_read


def _tier(urls: list[str], cache: Callable[[], Any], tier: str) -> tuple[list[float], list[float]]:
    """Each URL once: wall times, and the part of each spent inside moto's DynamoDB."""
    times, in_moto = [], []
    with moto_dynamodb_time() as moto:
        for url in urls:
            moto.lap()
            times.append(_analyze(url, cache(), tier)[0])
            in_moto.append(moto.lap())
    return times, in_moto


def latency() -> None:
    from imgsvc.cache import AnalysisCache

    report.note("Driven through imgsvc.analyze.analyze_url(url, cache), in process.")
    report.note(f"Image: tests/data/photos/{PHOTO} from a local HTTP server on 127.0.0.1;")
    report.note("DynamoDB (shared tier) is moto's in-process mock. One warm-up call per tier.")
    with moto_stack(), photo_server() as server:
        base = server.url(PHOTO)
        cache = AnalysisCache()
        # Warm-up: the first call imports fetch/imaging and creates the boto3 clients.
        _analyze(f"{base}?warmup", cache, "miss")
        _analyze(f"{base}?warmup", cache, "memory")
        _analyze(f"{base}?warmup", AnalysisCache(), "shared")

        urls = [f"{base}?run={i}" for i in range(RUNS)]
        tiers = {
            "miss": _tier(urls, lambda: cache, "miss"),
            "memory": _tier(urls, lambda: cache, "memory"),
            # A fresh AnalysisCache is a new container: empty memory tier, same table.
            "shared": _tier(urls, AnalysisCache, "shared"),
        }

    base_median = report.median(tiers["miss"][0])
    rows = []
    for name, what, tier in (
        ("miss", "get_item, fetch + probe, put_item", "miss"),
        ("memory hit", "warm container's LRU", "memory"),
        ("shared hit", "fresh cache: DynamoDB get_item", "shared"),
    ):
        runs, in_moto = tiers[tier]
        med = report.median(runs)
        rows.append(
            [
                name,
                what,
                len(runs),
                report.ms(med),
                report.ms(report.p90(runs)),
                report.ms(report.median(in_moto)),
                report.ratio(med, base_median),
                "baseline" if tier == "miss" else report.times_faster(base_median, med),
            ]
        )
    report.table(
        ["tier", "path", "runs", "median", "p90", "in moto", "vs miss", "speed-up"],
        rows,
        "llrrrrrr",
    )
    report.note(
        "'in moto': median time inside moto's DynamoDB emulation, which real DynamoDB "
        "(single-digit ms per request over the network) would replace."
    )


def _noise_jpeg() -> bytes:
    import numpy as np
    from PIL import Image

    width, height = NOISE_SIZE
    pixels = np.random.default_rng(20).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def _settled_count(server: PhotoServer, name: str, timeout: float = 3.0) -> int:
    """bytes_sent once the server thread has noticed the client left (stops changing)."""
    deadline = time.monotonic() + timeout
    last = server.bytes_sent(name)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = server.bytes_sent(name)
        if now == last:
            return now
        last = now
    return last


def bytes_read() -> None:
    from imgsvc.cache import AnalysisCache
    from imgsvc.config import get_settings

    data = _noise_jpeg()
    name = "noise.jpg"
    with moto_stack(), photo_server() as server:
        url = server.add(name, data, "image/jpeg")
        server.reset_counts()
        elapsed, read = _analyze(url, AnalysisCache(), "miss")
        sent = _settled_count(server, name)
        requests = server.requests(name)

    width, height = NOISE_SIZE
    report.note(
        f"A {width}x{height} random-noise JPEG (quality 95, {len(data) / (width * height):.2f} "
        f"bytes/pixel) served from 127.0.0.1; one analyze_url miss ({report.ms(elapsed)})."
    )
    report.note(
        f"The analyze cap (ANALYZE_MAX_BYTES) is {report.size(get_settings().analyze_max_bytes)}."
    )
    report.table(
        ["measure", "bytes", "of the file"],
        [
            ["file size", report.size(len(data)), "100%"],
            [
                "sent by the server (upper bound: socket buffers)",
                report.size(sent),
                f"{sent / len(data):.3%}",
            ],
            [
                "read by the fetcher (FetchResponse.bytes_read)",
                report.size(read),
                f"{read / len(data):.3%}",
            ],
        ],
        "lrr",
    )
    report.note(
        f"HTTP requests: {requests}. File size / bytes read: {report.ratio(len(data), read)}."
    )
