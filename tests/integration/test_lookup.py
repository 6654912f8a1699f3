"""POST /images/lookup (which sha256 the library holds) and the limits GET /status reports."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import PHOTOS, api_event, call, load_handler


@pytest.fixture
def h(aws):
    return {n: load_handler(n) for n in ("images", "import_image", "status")}


def _import(h, name: str) -> str:
    import requests

    prepared = requests.Request(
        "POST", "http://x/", files={"image": (name, (PHOTOS / name).read_bytes(), "image/jpeg")}
    ).prepare()
    status, body, _ = call(
        h["import_image"],
        api_event(
            "POST",
            "/images",
            body=prepared.body,
            headers={"Content-Type": prepared.headers["Content-Type"]},
        ),
    )
    assert status in (200, 201), body
    return body["image_id"]


def _photo() -> str:
    return sorted(p.name for p in PHOTOS.glob("*.jpg"))[0]


def test_lookup_splits_found_and_missing_in_request_order(h):
    stored = _import(h, _photo())
    absent = hashlib.sha256(b"not stored").hexdigest()
    body = {"sha256": [absent, stored, absent]}
    status, answer, _ = call(h["images"], api_event("POST", "/images/lookup", body=body))
    assert status == 200
    assert answer == {"found": [stored], "missing": [absent]}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"sha256": ["A" * 64]}, "sha256.0"),  # upper case is not an image id
        ({"sha256": ["a" * 63]}, "sha256.0"),
        ({"sha256": []}, "sha256"),
        ({"sha256": ["a" * 64] * 101}, "100"),
        ({"sha256": ["a" * 64], "extra": 1}, "extra"),
    ],
)
def test_lookup_rejects_bad_requests(h, body, needle):
    status, answer, _ = call(h["images"], api_event("POST", "/images/lookup", body=body))
    assert status == 400 and answer["code"] == "bad_request" and needle in answer["message"]


def test_status_reports_the_limits(h, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "12345")
    status, body, _ = call(h["status"], api_event("GET", "/status"))
    assert status == 200
    limits = body["limits"]
    assert limits["max_upload_bytes"] == 12345
    assert (
        "image/jpeg" in limits["content_types"] and "image/svg+xml" not in limits["content_types"]
    )
    assert limits["extensions"][".jpg"] == "image/jpeg"
    assert limits["max_files_per_request"] == 50 and limits["max_files_per_session"] == 1000
