"""MAX_FILES_PER_SESSION: the files one upload session holds, published by GET /status."""

from __future__ import annotations

import pytest

from tests.conftest import api_event, call, load_handler


@pytest.fixture
def h(aws, monkeypatch):
    monkeypatch.setenv("MAX_FILES_PER_SESSION", "3")
    return {n: load_handler(n) for n in ("uploads", "status")}


def _files(*names: str) -> dict:
    return {"files": [{"filename": n, "content_type": "image/png"} for n in names]}


def test_status_publishes_the_setting(h):
    status, body, _ = call(h["status"], api_event("GET", "/status"))
    assert status == 200 and body["limits"]["max_files_per_session"] == 3
    assert body["limits"]["max_files_per_request"] == 50


def test_a_session_holds_no_more_than_the_setting(h):
    status, body, _ = call(h["uploads"], api_event("POST", "/uploads", body=_files(*"abcd")))
    assert status == 409 and "3 files at most" in body["message"]

    status, body, _ = call(h["uploads"], api_event("POST", "/uploads", body=_files("a", "b")))
    assert status == 201
    path = f"/uploads/{body['upload_id']}/files"
    status, full, _ = call(h["uploads"], api_event("POST", path, body=_files("c", "d")))
    assert status == 409 and "3 files at most" in full["message"]
    status, added, _ = call(h["uploads"], api_event("POST", path, body=_files("c")))
    assert status == 201 and [f["filename"] for f in added["files"]] == ["c"]
    status, full, _ = call(h["uploads"], api_event("POST", path, body=_files("d")))
    assert status == 409 and "is full" in full["message"]
