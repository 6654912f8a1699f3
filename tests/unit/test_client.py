"""imgsvc_client without a server: the retry policy, paging, errors, the multipart body, and the
uploader's file finding (names, zip guards). HTTP is answered by ``responses``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import requests
import responses
from multipart import MultipartParser

from imgsvc_client import ApiError, Client
from imgsvc_client.uploader import collect

API = "http://api.test"
LIMITS = {
    "max_upload_bytes": 10 * 1024 * 1024,
    "max_direct_upload_bytes": 4 * 1024 * 1024,
    "content_types": ["image/jpeg", "image/png"],
    "extensions": {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"},
    "max_files_per_request": 50,
    "max_files_per_session": 1000,
    "max_lookup_ids": 2,
}
ERROR = {"status": "error", "code": "throttled", "message": "slow down"}


@pytest.fixture
def client() -> Client:
    return Client(API, "k", backoff=0.0, retries=3)  # no waiting between attempts


@responses.activate
def test_429_is_retried_even_for_a_delete_all(client):
    responses.delete(f"{API}/images", status=429, json=ERROR)
    responses.delete(f"{API}/images", json={"status": "deleted", "deleted": 2, "more": False})
    assert client.delete_all() == 2
    assert len(responses.calls) == 2


@responses.activate
def test_transient_errors_are_retried_only_where_safe(client):
    responses.get(f"{API}/images/x", status=503, json={"code": "unavailable", "message": "m"})
    responses.get(f"{API}/images/x", json={"image_id": "x"})
    assert client.get_image("x") == {"image_id": "x"}
    responses.delete(f"{API}/images", status=503, json={"code": "unavailable", "message": "m"})
    with pytest.raises(ApiError) as caught:
        client.delete_all()  # a repeat could delete the next batch
    assert caught.value.status == 503
    assert sum(1 for c in responses.calls if c.request.method == "DELETE") == 1


@responses.activate
def test_connection_errors_are_not_retried_for_new_sessions(client):
    responses.post(f"{API}/uploads", body=requests.ConnectionError("reset"))
    with pytest.raises(requests.ConnectionError):
        client.create_upload([{"filename": "a.jpg", "content_type": "image/jpeg"}])
    assert len(responses.calls) == 1
    responses.post(f"{API}/images", body=requests.ConnectionError("reset"))
    responses.post(f"{API}/images", json={"image_id": "i"}, status=201)
    assert client.import_url("https://example.com/a.jpg") == {"image_id": "i"}


@responses.activate
def test_writes_carry_one_idempotency_key_across_their_retries(client, tmp_path):
    unavailable = {"code": "unavailable", "message": "retry"}
    responses.post(f"{API}/images", status=503, json=unavailable)
    responses.post(f"{API}/images", body=requests.ConnectionError("reset"))
    responses.post(f"{API}/images", json={"image_id": "i"}, status=201)
    assert client.import_url("https://example.com/a.jpg") == {"image_id": "i"}
    keys = [c.request.headers["Idempotency-Key"] for c in responses.calls]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(keys[0]) == 36
    path = tmp_path / "a.png"
    path.write_bytes(b"png")
    responses.post(f"{API}/images", json={"image_id": "j"}, status=201)
    responses.post(f"{API}/images/i/crop", status=503, json=unavailable)
    responses.post(f"{API}/images/i/crop", json={"image_id": "k"}, status=201)
    client.import_file(path)
    client.crop("i", 0, 0, 1, 1)
    later = [c.request.headers["Idempotency-Key"] for c in responses.calls[3:]]
    assert len(later) == 3 and later[1] == later[2] and len(set(later + keys[:1])) == 3


@responses.activate
def test_error_answers_carry_the_code(client):
    body = {"status": "error", "code": "not_found", "message": "no image with id y"}
    responses.get(f"{API}/images/y", status=404, json=body)
    with pytest.raises(ApiError) as caught:
        client.get_image("y")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert "no image with id y" in str(caught.value)
    responses.get(f"{API}/images/z", status=502, body="<html>bad gateway</html>")
    with pytest.raises(ApiError) as caught:
        client.get_image("z")
    assert caught.value.code == "http_502" and "bad gateway" in caught.value.message


@responses.activate
def test_iter_images_follows_the_cursor(client):
    responses.get(
        f"{API}/images",
        match=[responses.matchers.query_param_matcher({"limit": "2"})],
        json={"images": [{"image_id": "a"}, {"image_id": "b"}], "next_cursor": "c1"},
    )
    responses.get(
        f"{API}/images",
        match=[responses.matchers.query_param_matcher({"limit": "2", "cursor": "c1"})],
        json={"images": [{"image_id": "c"}], "next_cursor": None},
    )
    assert [i["image_id"] for i in client.iter_images(page_size=2)] == ["a", "b", "c"]


@responses.activate
def test_lookup_batches_by_the_published_limit(client):
    responses.get(f"{API}/status", json={"status": "ok", "version": "1", "limits": LIMITS})
    sent: list[list[str]] = []

    def answer(request):
        import json

        ids = json.loads(request.body)["sha256"]
        sent.append(ids)
        return 200, {}, json.dumps({"found": [i for i in ids if i != "b"], "missing": []})

    responses.add_callback(responses.POST, f"{API}/images/lookup", callback=answer)
    assert client.lookup(["a", "b", "a", "c"]) == {"a", "c"}
    assert sent == [["a", "b"], ["c"]]  # repeats dropped, two ids a call


@responses.activate
def test_presigned_post_streams_a_valid_multipart_body_with_progress(client, tmp_path):
    data = bytes(range(256)) * 1000
    (tmp_path / "p.jpg").write_bytes(data)
    seen: dict[str, object] = {}
    attempts = []

    def s3(request):
        body = request.body.read() if hasattr(request.body, "read") else request.body
        attempts.append(len(body))
        if len(attempts) == 1:
            return 503, {}, "try again"
        boundary = request.headers["Content-Type"].split("boundary=")[1]
        parts = {p.name: p for p in MultipartParser(io.BytesIO(body), boundary)}
        seen.update(key=parts["key"].value, file=parts["file"].raw, names=list(parts))
        seen["api_key"] = request.headers.get("x-api-key")
        return 204, {}, ""

    responses.add_callback(responses.POST, "http://s3.test/bucket", callback=s3)
    progress: list[int] = []
    post = {"filename": "p.jpg", "url": "http://s3.test/bucket", "fields": {"key": "uploads/u/p"}}
    client.post_file(post, tmp_path / "p.jpg", content_type="image/jpeg", progress=progress.append)
    assert seen["file"] == data and seen["key"] == "uploads/u/p"
    assert seen["names"][-1] == "file"  # S3 wants the file last
    assert seen["api_key"] is None  # the key never goes to S3
    assert sum(progress) == len(data) and min(progress) < 0  # the failed try was undone
    assert len(attempts) == 2


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_collect_names_folders_and_zips_by_the_documented_rule(tmp_path):
    (tmp_path / "DCIM" / "100APPLE").mkdir(parents=True)
    (tmp_path / "DCIM" / "101APPLE").mkdir()
    (tmp_path / "DCIM" / "100APPLE" / "IMG_0001.JPG").write_bytes(b"a")
    (tmp_path / "DCIM" / "101APPLE" / "IMG_0001.JPG").write_bytes(b"b")
    (tmp_path / "DCIM" / "100APPLE__IMG_0001.JPG").write_bytes(b"c")  # the rule's collision
    (tmp_path / "DCIM" / ".hidden.jpg").write_bytes(b"d")
    _zip(tmp_path / "DCIM" / "old.zip", {"x/y.png": b"e", "__MACOSX/x/._y.png": b"junk"})
    single = tmp_path / "IMG_0001.JPG"
    single.write_bytes(b"f")
    sources, rejected = collect([tmp_path / "DCIM", single], LIMITS)
    names = {Path(s.label).name if "!" not in s.label else s.label.split("!")[1]: s.name
             for s in sources}  # fmt: skip
    assert sorted(s.name for s in sources) == [
        "100APPLE__IMG_0001.JPG",
        "100APPLE__IMG_0001~2.JPG",
        "101APPLE__IMG_0001.JPG",
        "IMG_0001.JPG",
        "old.zip__x__y.png",
    ]
    assert names["x/y.png"] == "old.zip__x__y.png"
    assert rejected == []


def test_zip_guards(tmp_path):
    big = b"\0" * (4 * 1024 * 1024)
    archive = _zip(
        tmp_path / "a.zip",
        {
            "../up.jpg": b"x",
            "/abs.jpg": b"x",
            "bomb.png": big,
            "inner.zip": b"PK",
            "notes.txt": b"text",
            "empty.jpg": b"",
            "ok.jpg": b"fine",
        },
        zipfile.ZIP_DEFLATED,
    )
    sources, rejected = collect([archive], LIMITS)
    assert [s.name for s in sources] == ["ok.jpg"]
    with sources[0].opener() as handle:
        assert handle.read() == b"fine"
    reasons = {r.label.split("!")[1]: r.reason for r in rejected}
    assert "escapes" in reasons["../up.jpg"] and "escapes" in reasons["/abs.jpg"]
    assert "zip bomb" in reasons["bomb.png"]
    assert "zip inside a zip" in reasons["inner.zip"]
    assert "not an image type" in reasons["notes.txt"]
    assert "empty" in reasons["empty.jpg"]


def test_a_file_over_the_limit_is_rejected_before_sending(tmp_path):
    (tmp_path / "huge.jpg").write_bytes(b"\xff" * 1024)
    sources, rejected = collect([tmp_path / "huge.jpg"], {**LIMITS, "max_upload_bytes": 1000})
    assert sources == [] and "over the limit of 1000" in rejected[0].reason
