"""The web app's function and files: CSP, cache headers, stage redirect, size, safe rendering;
download names of originals."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from imgsvc import storage, webapp
from tests.conftest import ROOT, api_event, call, load_handler

STATIC = ROOT / "functions" / "webapp" / "static"


@pytest.fixture
def app(aws):
    return load_handler("webapp")


def test_index_has_a_csp_without_inline_or_foreign_scripts(app) -> None:
    status, body, headers = call(app, api_event("GET", "/"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = dict(p.strip().split(" ", 1) for p in headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["default-src"] == "'none'" and csp["object-src"] == "'none'"
    # The bucket's endpoint (where presigned links point) is allowed for pictures and uploads.
    s3_origin = webapp.origin(storage.download_url("0" * 64, "JPEG"))
    assert s3_origin in csp["img-src"].split() and s3_origin in csp["connect-src"].split()
    assert headers["Cache-Control"] == "no-cache"
    # Every asset URL is relative and versioned; no inline script anywhere.
    refs = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert refs and all(r.startswith(("static/", "#")) for r in refs), refs
    assert not re.search(r"<script(?![^>]*\bsrc=)", body)
    assert "{{version}}" not in body


def test_static_files_are_immutable_under_their_version_only(app) -> None:
    _, index, _ = call(app, api_event("GET", "/"))
    path = re.search(r'src="(static/[0-9a-f]+/app\.js)"', index).group(1)
    _, version, _ = path.split("/")
    event = api_event("GET", f"/{path}")
    event["pathParameters"] = {"version": version, "name": "app.js"}
    status, body, headers = call(app, event)
    assert status == 200 and "import" in body
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == webapp.IMMUTABLE
    status, _, headers = call(app, api_event("GET", "/static/0123456789ab/app.js"))
    assert status == 200 and headers["Cache-Control"] == "no-cache"  # an old page's request
    status, body, _ = call(app, api_event("GET", f"/static/{version}/nope.js"))
    assert status == 404 and body["code"] == "not_found"
    # Not a static file name at all (the page itself is GET /): refused by the contract.
    status, body, _ = call(app, api_event("GET", f"/static/{version}/index.html"))
    assert status == 400 and body["code"] == "bad_request"


def test_stage_path_without_slash_redirects_relative(app) -> None:
    event = api_event("GET", "/")
    event["requestContext"]["path"] = "/prod"
    status, _, headers = call(app, event)
    assert status == 301 and headers["Location"] == "prod/"
    event["requestContext"]["path"] = "/prod/"
    assert call(app, event)[0] == 200


def test_content_link_downloads_under_the_image_name(aws) -> None:
    url = storage.download_url("ab" * 32, "PNG", "horse.jpeg")
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"] == ['attachment; filename="horse.png"']
    assert query["response-content-type"] == ["image/png"]
