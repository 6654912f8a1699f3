"""Golden responses of every route: what users see, recorded before restructuring.

One scenario drives every handler in order over moto; each response is normalised (ids of
sessions, times, signatures, ports and cursors vary) and compared with
``tests/integration/golden/responses.json``. Successes compare status, the headers users rely on
and the whole body; errors compare status and error code (the wording of messages may improve).
``UPDATE_GOLDEN=1 pytest tests/integration/test_golden_responses.py`` rewrites the file: review
its diff, it is a change of the API.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PHOTOS, LambdaContext, api_event, load_handler, response_headers

GOLDEN = Path(__file__).parent / "golden" / "responses.json"
HANDLERS = (
    "status",
    "analyze",
    "history",
    "uploads",
    "images",
    "import_image",
    "crop",
    "diff",
    "similar",
    "ascii",
    "rendition",
    "stats",
)
KEPT_HEADERS = ("Content-Type", "Cache-Control", "X-Cache", "Location")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?")
PORT = re.compile(r"127\.0\.0\.1:\d+")
SIGNED_FIELDS = {"policy", "x-amz-signature", "x-amz-credential", "x-amz-date"}


def normalise(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key == "uploads_per_day":  # keyed by the last 30 UTC dates
            return {"days": len(value), "counts": list(value.values())}
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, key) for v in value]
    if isinstance(value, str):
        if key in SIGNED_FIELDS:
            return f"<{key}>"
        if key in ("next_cursor", "cursor"):
            return "<cursor>"
        if value.startswith("http") and "?" in value:
            value = value.split("?")[0] + "?<signed>"
        return PORT.sub("127.0.0.1:<port>", TIME.sub("<time>", UUID.sub("<uuid>", value)))
    return value


def record(response: dict[str, Any]) -> dict[str, Any]:
    status = response["statusCode"]
    headers = response_headers(response)
    body_text = response.get("body") or ""
    try:
        body = json.loads(body_text)
    except ValueError:
        body = body_text
    if status >= 400:
        assert isinstance(body, dict) and body["status"] == "error", body
        assert (
            {"status", "code", "message"} <= set(body) <= {"status", "code", "message", "details"}
        )
        assert body["message"], body
        return {
            "status": status,
            "code": body["code"],
            **({"details": body["details"]} if "details" in body else {}),
        }
    kept = {h: normalise(headers[h]) for h in KEPT_HEADERS if h in headers}
    if isinstance(body, str) and len(body) > 2000:
        body = {"text_length": len(body), "lines": body.count("\n")}
    return {"status": status, "headers": kept, "body": normalise(body)}


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> Any:
    req = requests.Request("POST", "http://x/", data=fields, files=files).prepare()
    return req.body, req.headers["Content-Type"]


@pytest.fixture
def handlers(aws) -> dict[str, Any]:
    return {name: load_handler(name) for name in HANDLERS}


def test_every_route_answers_as_recorded(handlers, photo_server, monkeypatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    got: dict[str, Any] = {}

    def step(name: str, handler: str, method: str, path: str, **kwargs: Any) -> Any:
        response = handlers[handler].lambda_handler(
            api_event(method, path, **kwargs), LambdaContext()
        )
        got[name] = record(response)
        try:
            return json.loads(response.get("body") or "")
        except ValueError:
            return response.get("body")

    photo = (PHOTOS / "coffee_iphone_rot6.jpg").read_bytes()
    url = photo_server.url("chelsea_canon.jpg")

    step("status", "status", "GET", "/status")
    step("no_route", "status", "GET", "/nope")
    # analyze and history
    step("analyze_miss", "analyze", "POST", "/analyze", body={"image_url": url})
    step("analyze_hit", "analyze", "POST", "/analyze", body={"image_url": url})
    step("analyze_missing_url", "analyze", "POST", "/analyze", body={})
    step("analyze_not_json", "analyze", "POST", "/analyze", body="nope")
    step("analyze_blocked", "analyze", "POST", "/analyze", body={"image_url": "file:///etc/x"})
    step("history", "history", "GET", "/history")
    step("history_limit", "history", "GET", "/history", query={"limit": "1"})
    step("history_bad_limit", "history", "GET", "/history", query={"limit": "0"})
    # uploads
    files = [{"filename": "a.jpg", "content_type": "image/jpeg", "size": 100}]
    session = step(
        "upload_create", "uploads", "POST", "/uploads", body={"expiry": 60, "files": files}
    )
    upload_id = session["upload_id"]
    more = {"files": [{"filename": "b.png", "content_type": "image/png"}]}
    step("upload_add", "uploads", "POST", f"/uploads/{upload_id}/files", body=more)
    step("upload_add_again", "uploads", "POST", f"/uploads/{upload_id}/files", body=more)
    step("upload_state", "uploads", "GET", f"/uploads/{upload_id}")
    step("upload_bad_id", "uploads", "GET", "/uploads/not-a-uuid")
    step("upload_unknown", "uploads", "GET", f"/uploads/{'0' * 8}-0000-4000-8000-{'0' * 12}")
    step("upload_bad_expiry", "uploads", "POST", "/uploads", body={"expiry": 0})
    step("upload_unknown_field", "uploads", "POST", "/uploads", body={"nope": 1})
    svg = {"files": [{"filename": "a.svg", "content_type": "image/svg+xml"}]}
    step("upload_svg", "uploads", "POST", "/uploads", body=svg)
    # direct upload and import
    body, ctype = multipart(
        {"name": "Coffee", "desc": "a cup"}, {"image": ("c.jpg", photo, "image/jpeg")}
    )
    created = step(
        "direct_upload",
        "import_image",
        "POST",
        "/images",
        body=body,
        headers={"Content-Type": ctype},
    )
    step(
        "direct_upload_again",
        "import_image",
        "POST",
        "/images",
        body=body,
        headers={"Content-Type": ctype},
    )
    bad, bad_type = multipart({}, {"image": ("x.jpg", b"not an image", "image/jpeg")})
    step(
        "direct_upload_bad",
        "import_image",
        "POST",
        "/images",
        body=bad,
        headers={"Content-Type": bad_type},
    )
    step(
        "direct_upload_wrong_type",
        "import_image",
        "POST",
        "/images",
        body=b"x",
        headers={"Content-Type": "text/plain"},
    )
    imported = step(
        "import_url",
        "import_image",
        "POST",
        "/images",
        body={"url": url, "name": "cat"},
        headers={"Content-Type": "application/json"},
    )
    step(
        "import_url_bad",
        "import_image",
        "POST",
        "/images",
        body={"url": 5},
        headers={"Content-Type": "application/json"},
    )
    assert imported["image_id"] != created["image_id"]
    image_id, other_id = created["image_id"], imported["image_id"]
    # the library
    step("list", "images", "GET", "/images")
    page = step("list_limit", "images", "GET", "/images", query={"limit": "1"})
    step(
        "list_next", "images", "GET", "/images", query={"limit": "1", "cursor": page["next_cursor"]}
    )
    step("list_bad_limit", "images", "GET", "/images", query={"limit": "101"})
    step("list_bad_cursor", "images", "GET", "/images", query={"cursor": "garbage!"})
    step("get", "images", "GET", f"/images/{image_id}")
    step("get_bad_id", "images", "GET", "/images/NOTHEX")
    step("get_unknown", "images", "GET", f"/images/{'a' * 64}")
    lookup = {"sha256": [image_id, "a" * 64, other_id]}
    step("lookup", "images", "POST", "/images/lookup", body=lookup)
    step("lookup_bad", "images", "POST", "/images/lookup", body={"sha256": ["NOTHEX"]})
    step("content", "images", "GET", f"/images/{image_id}/content")
    step("content_unknown", "images", "GET", f"/images/{'a' * 64}/content")
    step("thumbnail", "images", "GET", f"/images/{image_id}/thumbnail")
    step("thumbnail_unknown", "images", "GET", f"/images/{'a' * 64}/thumbnail")
    # operations
    box = {"left": 50, "top": 100, "right": 350, "bottom": 500}
    crop = step("crop", "crop", "POST", f"/images/{image_id}/crop", body=box)
    step("crop_again", "crop", "POST", f"/images/{image_id}/crop", body=box)
    step("crop_outside", "crop", "POST", f"/images/{image_id}/crop", body={**box, "right": 401})
    step("crop_missing_field", "crop", "POST", f"/images/{image_id}/crop", body={"left": 0})
    step("crop_unknown", "crop", "POST", f"/images/{'b' * 64}/crop", body=box)
    step("diff", "diff", "GET", f"/images/{image_id}/diff/{other_id}")
    step(
        "diff_threshold",
        "diff",
        "GET",
        f"/images/{image_id}/diff/{crop['image_id']}",
        query={"threshold": "64"},
    )
    step(
        "diff_bad_threshold",
        "diff",
        "GET",
        f"/images/{image_id}/diff/{other_id}",
        query={"threshold": "65"},
    )
    step("diff_unknown", "diff", "GET", f"/images/{image_id}/diff/{'c' * 64}")
    step("similar", "similar", "GET", f"/images/{image_id}/similar")
    step(
        "similar_args",
        "similar",
        "GET",
        f"/images/{image_id}/similar",
        query={"max_distance": "0", "limit": "1"},
    )
    step("similar_bad", "similar", "GET", f"/images/{image_id}/similar", query={"limit": "0"})
    step("ascii", "ascii", "GET", f"/images/{image_id}/ascii", query={"width": "20"})
    step("ascii_hit", "ascii", "GET", f"/images/{image_id}/ascii", query={"width": "20"})
    step("ascii_bad_width", "ascii", "GET", f"/images/{image_id}/ascii", query={"width": "9"})
    step("ascii_unknown", "ascii", "GET", f"/images/{'d' * 64}/ascii")
    rendition = f"/images/{image_id}/rendition"
    step("rendition", "rendition", "GET", rendition, query={"width": "300", "format": "jpeg"})
    step("rendition_again", "rendition", "GET", rendition, query={"width": "300", "format": "jpeg"})
    # wider than the picture (600 px as displayed): the picture's own width, WebP by default
    step("rendition_default_format", "rendition", "GET", rendition, query={"width": "2000"})
    step("rendition_too_wide", "rendition", "GET", rendition, query={"width": "3841"})
    step("rendition_no_width", "rendition", "GET", rendition)
    step(
        "rendition_bad_format", "rendition", "GET", rendition, query={"width": "1", "format": "gif"}
    )
    step(
        "rendition_unknown",
        "rendition",
        "GET",
        f"/images/{'d' * 64}/rendition",
        query={"width": "9"},
    )
    step("stats", "stats", "GET", "/stats")
    # deletes
    step("delete", "images", "DELETE", f"/images/{crop['image_id']}")
    step("delete_again", "images", "DELETE", f"/images/{crop['image_id']}")
    step("delete_all_unconfirmed", "images", "DELETE", "/images")
    step("delete_all", "images", "DELETE", "/images", query={"confirm": "true"})
    step("stats_after", "stats", "GET", "/stats")

    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name
