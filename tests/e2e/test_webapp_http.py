"""The web app over real HTTP on the local stack, and the S3 CORS a browser's upload needs."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import PHOTOS

pytestmark = pytest.mark.e2e
ORIGIN = "http://127.0.0.1:9"  # any page's origin: the bucket's rule allows every origin


def test_the_app_and_its_files_need_no_key(stack) -> None:
    page = requests.get(stack.url("/"), timeout=10)
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"app.js", "app.css", "favicon.svg"}
    for asset in assets:
        r = requests.get(stack.url("/" + asset), timeout=10)
        assert r.status_code == 200 and "immutable" in r.headers["Cache-Control"], asset
    # Modules imported by app.js are served too.
    base = assets[0].rsplit("/", 1)[0]
    app_js = requests.get(stack.url(f"/{base}/app.js"), timeout=10).text
    for module in re.findall(r'from "\./([^"]+)"', app_js):
        assert requests.get(stack.url(f"/{base}/{module}"), timeout=10).status_code == 200


def test_a_browser_upload_gets_the_bucket_cors_headers(stack) -> None:
    data = (PHOTOS / "horse_rgba.png").read_bytes()
    files = [{"filename": "horse.png", "content_type": "image/png", "size": len(data)}]
    up = stack.session.post(stack.url("/uploads"), json={"files": files}, timeout=10).json()
    post = up["files"][0]
    preflight = requests.options(
        post["url"],
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    ok = requests.post(
        post["url"],
        data=post["fields"],
        files={"file": ("horse.png", data, "image/png")},
        headers={"Origin": ORIGIN},
        timeout=10,
    )
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == "*"
    # S3's errors are readable by the page too.
    missing = requests.get(
        post["url"].rstrip("/") + "/no/such/key", headers={"Origin": ORIGIN}, timeout=10
    )
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    broken = requests.post(
        post["url"], files={"file": data}, headers={"Origin": ORIGIN}, timeout=10
    )
    assert broken.status_code >= 400 and broken.headers["Access-Control-Allow-Origin"] == "*"
