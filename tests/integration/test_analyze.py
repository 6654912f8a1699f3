"""POST /analyze and GET /history through their handlers, images served on 127.0.0.1."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import api_event, call, load_event, load_handler


@pytest.fixture
def handlers(aws, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")  # the photo server is on loopback
    return {"analyze": load_handler("analyze"), "history": load_handler("history")}


def analyze(handlers, url):
    return call(handlers["analyze"], api_event("POST", "/analyze", body={"image_url": url}))


def big_jpeg(megabytes: int) -> bytes:
    """A real JPEG of about ``megabytes`` MB: noise does not compress."""
    import numpy as np

    rng = np.random.default_rng(1)
    side = int((megabytes * 1024 * 1024 / 1.15) ** 0.5)  # q95 noise: ~1.2 bytes a pixel
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=95
    )
    return buf.getvalue()


@pytest.mark.parametrize(
    "name",
    [
        "chelsea_canon.jpg", "horse_rgba.png", "gravel.gif", "brick.webp", "coins.tiff",
        "clock.bmp", "chelsea_iphone_rot6.heic", "nokia_hdr_phone.heif", "coffee_pixel_rot6.avif",
    ],
)  # fmt: skip
def test_analyze_matches_the_manifest_then_hits_the_cache(handlers, photo_server, manifest, name):
    url = photo_server.url(name)
    status, body, _ = analyze(handlers, url)
    m = manifest[name]
    assert status == 200
    assert body == {
        "status": "success",
        "result": {
            "format": m["format"],
            "size": f"{m['width']}x{m['height']}",
            "width": m["width"],
            "height": m["height"],
            "mode": m["mode"],
            # Only PNG's header counts frames; WebP's flags an animation (VP8X) or a still.
            "animated": False if m["format"] in ("PNG", "WEBP") else None,
            "frames": 1 if m["format"] == "PNG" else None,
        },
        "cache": "miss",
    }
    photo_server.reset_counts()
    status, again, _ = analyze(handlers, url)
    assert status == 200 and again["cache"] == "hit" and again["result"] == body["result"]
    assert photo_server.requests(name) == 0  # answered without fetching


def test_a_new_container_is_answered_by_the_shared_tier(handlers, photo_server):
    url = photo_server.url("astronaut_nikon.jpg")
    assert analyze(handlers, url)[1]["cache"] == "miss"
    cold = load_handler("analyze")  # a fresh module: an empty warm-container cache
    photo_server.reset_counts()
    status, body, _ = call(cold, api_event("POST", "/analyze", body={"image_url": url}))
    assert status == 200 and body["cache"] == "hit"
    assert photo_server.requests("astronaut_nikon.jpg") == 0


def test_spellings_of_one_url_share_one_cache_entry(handlers, photo_server):
    url = photo_server.url("clock.bmp")  # http://127.0.0.1:<port>/clock.bmp
    assert analyze(handlers, url)[1]["cache"] == "miss"
    photo_server.reset_counts()
    for spelling in (url.replace("http://", "HTTP://"), url.replace("127.0.0.1", "127.0.0.1.")):
        status, body, _ = call(
            handlers["analyze"], api_event("POST", "/analyze", body={"url": spelling})
        )
        assert status == 200 and body["cache"] == "hit", spelling
    assert photo_server.requests("clock.bmp") == 0
    _, history, _ = call(handlers["history"], api_event("GET", "/history"))
    assert history["cached_items"].count(url) == 1


def test_a_20_mb_image_is_not_downloaded(handlers, photo_server):
    data = big_jpeg(20)
    assert len(data) > 15 * 1024 * 1024
    photo_server.add("big.jpg", data, "image/jpeg")
    status, body, _ = analyze(handlers, photo_server.url("big.jpg"))
    assert status == 200 and body["result"]["format"] == "JPEG"
    assert photo_server.bytes_sent("big.jpg") < len(data) // 20


def test_history_lists_cached_urls_newest_first(handlers, photo_server):
    urls = [photo_server.url(n) for n in ("clock.bmp", "brick.webp", "coins.tiff")]
    for url in urls:
        analyze(handlers, url)
    analyze(handlers, photo_server.url("bad_not_an_image.jpg"))  # failures are not cached
    status, body, _ = call(handlers["history"], load_event("history.json"))
    assert status == 200
    assert body == {"cached_items": urls[::-1], "count": 3}


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("bad_not_an_image.jpg", 422, "invalid_image"),
        ("bad_empty.jpg", 422, "invalid_image"),
        ("missing.jpg", 502, "upstream_error"),
    ],
)
def test_analyze_errors(handlers, photo_server, name, status, code):
    got, body, _ = analyze(handlers, photo_server.url(name))
    assert (got, body["code"], body["status"]) == (status, code, "error")
    assert body["message"]


def test_analyze_bad_requests(handlers, photo_server, monkeypatch):
    for payload in ({}, {"image_url": ""}, {"image_url": 5}, {"url": "x"}):
        status, body, _ = call(handlers["analyze"], api_event("POST", "/analyze", body=payload))
        assert status == 400, payload
    status, body, _ = analyze(handlers, "ftp://example.com/a.png")
    assert status == 400 and body["code"] == "blocked_url"
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "false")
    status, body, _ = analyze(handlers, photo_server.url("clock.bmp"))
    assert status == 400 and body["code"] == "blocked_url"


def test_too_large_by_content_length(handlers, photo_server, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    status, body, _ = analyze(handlers, photo_server.url("chelsea_canon.jpg"))
    assert status == 413 and body["code"] == "too_large"


def test_import_from_url(aws, photo_server, monkeypatch, manifest):
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    handler = load_handler("import_image")
    url = photo_server.url("chelsea_pixel.jpg")
    status, image, _ = call(handler, api_event("POST", "/images", body={"url": url, "name": "cat"}))
    assert status == 201
    assert image["sha256"] == manifest["chelsea_pixel.jpg"]["sha256"]
    assert image["source_url"] == url and image["name"] == "cat"
    status, again, _ = call(handler, api_event("POST", "/images", body={"url": url}))
    assert status == 200 and again["image_id"] == image["image_id"]
    status, body, _ = call(
        handler, api_event("POST", "/images", body={"url": photo_server.url("bad_truncated.jpg")})
    )
    assert status == 422
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "false")
    status, body, _ = call(handler, api_event("POST", "/images", body={"url": url}))
    assert status == 400 and body["code"] == "blocked_url"


def test_a_phone_heif_is_analyzed_from_its_header(handlers, photo_server, manifest):
    name = "nokia_hdr_phone.heif"  # 866 KB, its meta box in the first 3.4 KB
    status, body, _ = analyze(handlers, photo_server.url(name))
    assert status == 200
    assert body["result"]["size"] == "4608x3456" and body["result"]["format"] == "HEIF"
    # Far less than the file (the server sends in chunks and stops when the client does).
    assert photo_server.bytes_sent(name) < manifest[name]["bytes"] // 4
