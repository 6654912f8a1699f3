"""The ingest handler on S3 events: every test photo, encoded keys, redelivery, rejects."""

from __future__ import annotations

import copy
import io
import json
from urllib.parse import quote_plus

import pytest
from PIL import Image

from imgsvc import formats, stats
from tests.conftest import PHOTOS, LambdaContext, api_event, call, load_event, load_handler


@pytest.fixture
def handlers(aws):
    return {"uploads": load_handler("uploads"), "ingest": load_handler("ingest")}


def start_upload(handlers, *filenames: str) -> str:
    files = [
        {"filename": f, "content_type": formats.EXTENSIONS["." + f.rsplit(".", 1)[1].lower()]}
        for f in filenames
    ]
    status, body, _ = call(
        handlers["uploads"], api_event("POST", "/uploads", body={"expiry": 60, "files": files})
    )
    assert status == 201, body
    return body["upload_id"]


def s3_event(bucket: str, key: str, size: int) -> dict:
    event = copy.deepcopy(load_event("s3_put_encoded_key.json"))
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = bucket
    obj["object"]["key"] = quote_plus(key, safe="/")  # as S3 sends it
    obj["object"]["size"] = size
    return event


def deliver(handlers, aws, upload_id: str, filename: str, data: bytes, times: int = 1) -> list:
    key = f"uploads/{upload_id}/{filename}"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=data)
    event = s3_event(aws.bucket, key, len(data))
    return [
        handlers["ingest"].lambda_handler(event, LambdaContext())["results"][0]
        for _ in range(times)
    ]


def status_of(handlers, upload_id: str) -> dict:
    status, body, _ = call(handlers["uploads"], api_event("GET", f"/uploads/{upload_id}"))
    assert status == 200
    return body["files"]


def objects(aws) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.bucket).get("Contents", []))


GOOD = [
    e["file"]
    for e in json.loads((PHOTOS / "manifest.json").read_text())
    if e.get("pillow_opens") and not e["file"].startswith("bad_")
]
BAD = [
    e["file"]
    for e in json.loads((PHOTOS / "manifest.json").read_text())
    if e["file"].startswith("bad_")
]


@pytest.mark.parametrize("name", GOOD)
def test_every_good_photo_is_ingested_with_its_manifest_metadata(handlers, aws, manifest, name):
    data = (PHOTOS / name).read_bytes()
    upload_id = start_upload(handlers, name)
    [result] = deliver(handlers, aws, upload_id, name, data)
    expected = manifest[name]
    assert result["outcome"] == "created" and result["image_id"] == expected["sha256"]
    state = status_of(handlers, upload_id)[name]
    thumbnail_url = state.pop("thumbnail_url")
    assert state == {
        "status": "done",
        "image_id": expected["sha256"],
        "duplicate": False,
        "error": None,
        "note": None,
    }
    status, image, _ = call(
        load_handler("images"), api_event("GET", f"/images/{expected['sha256']}")
    )
    assert status == 200
    for field in (
        "format",
        "width",
        "height",
        "mode",
        "make",
        "model",
        "orientation",
        "sha256",
        "sha1",
        "bytes",
    ):
        assert image[field] == expected[field], field
    assert len(image["phash"]) == 16
    # the upload object is gone; the image is stored once under its content address, its
    # thumbnail beside it
    thumb_key = f"renditions/{expected['sha256']}/thumb.webp"
    assert objects(aws) == [f"images/{expected['sha256']}", thumb_key]
    # the thumbnail is the picture as displayed, at most 320 px on its long side
    assert image["thumbnail_url"] == thumbnail_url  # the same window: the same link
    stored = aws.s3.get_object(Bucket=aws.bucket, Key=thumb_key)
    assert stored["ContentType"] == "image/webp"
    assert stored["CacheControl"] == "public, max-age=31536000, immutable"
    with Image.open(io.BytesIO(stored["Body"].read())) as thumb:
        assert thumb.format == "WEBP"
        shown = (image["display_width"], image["display_height"])
        scale = min(1.0, 320 / max(shown))
        assert thumb.size == (round(shown[0] * scale), round(shown[1] * scale))
        assert (thumb.mode == "RGBA") == (expected["mode"] == "RGBA")  # transparency kept
        assert not thumb.getexif()  # no camera data (or GPS) in a public link


@pytest.mark.parametrize("name", BAD)
def test_bad_files_are_rejected_with_a_reason_and_leave_nothing(handlers, aws, name):
    data = (PHOTOS / name).read_bytes()
    upload_id = start_upload(handlers, name.replace(".png", ".png"))
    [result] = deliver(handlers, aws, upload_id, name, data)
    assert result["outcome"] == "rejected"
    state = status_of(handlers, upload_id)[name]
    assert state["status"] == "rejected" and state["image_id"] is None
    assert len(state["error"]) > 10
    assert objects(aws) == []
    assert stats.get_stats()["total_images"] == 0
    assert sum(stats.get_stats()["uploads_per_day"].values()) == 0


def test_over_the_size_limit_is_rejected_without_reading(handlers, aws, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    upload_id = start_upload(handlers, "big.jpg")
    [result] = deliver(
        handlers, aws, upload_id, "big.jpg", (PHOTOS / "chelsea_canon.jpg").read_bytes()
    )
    assert result["outcome"] == "rejected" and "limit of 1000 bytes" in result["error"]


def test_encoded_key_with_plus_and_space(handlers, aws, manifest):
    name = "a+b c.jpg"
    upload_id = start_upload(handlers, name)
    data = (PHOTOS / "chelsea_canon.jpg").read_bytes()
    [result] = deliver(handlers, aws, upload_id, name, data)
    assert result["outcome"] == "created"
    assert status_of(handlers, upload_id)[name]["status"] == "done"


def test_every_event_three_times_equals_once(handlers, aws):
    names = ["chelsea_canon.jpg", "horse_rgba.png", "bad_truncated.jpg", "chelsea_canon2.jpg"]
    upload_id = start_upload(handlers, *names)
    sources = ["chelsea_canon.jpg", "horse_rgba.png", "bad_truncated.jpg", "chelsea_canon.jpg"]
    results = [
        deliver(handlers, aws, upload_id, n, (PHOTOS / s).read_bytes(), times=3)
        for n, s in zip(names, sources, strict=True)
    ]
    assert [r[0]["outcome"] for r in results] == ["created", "created", "rejected", "duplicate"]
    assert all(r["outcome"] == "already_processed" for rs in results for r in rs[1:])
    once = stats.get_stats()
    assert once == stats.recount()
    assert once["total_images"] == 2 and sum(once["uploads_per_day"].values()) == 3
    files = status_of(handlers, upload_id)
    assert files["chelsea_canon2.jpg"]["duplicate"] is True
    assert files["chelsea_canon2.jpg"]["image_id"] == files["chelsea_canon.jpg"]["image_id"]
    assert len(objects(aws)) == 4  # two images, two thumbnails


def test_test_event_with_no_records(handlers):
    assert handlers["ingest"].lambda_handler(load_event("s3_test_event.json"), LambdaContext()) == {
        "results": []
    }


def test_object_without_upload_record_is_removed(handlers, aws):
    [result] = deliver(handlers, aws, "00000000-0000-0000-0000-000000000000", "x.jpg", b"data")
    assert result["outcome"] == "ignored"
    assert objects(aws) == []


def test_unexpected_errors_fail_the_invocation(handlers, aws, monkeypatch):
    upload_id = start_upload(handlers, "a.jpg")
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    with pytest.raises(Exception, match=r"ResourceNotFound|non-existent table|Requested resource"):
        deliver(handlers, aws, upload_id, "a.jpg", (PHOTOS / "chelsea_canon.jpg").read_bytes())


@pytest.mark.parametrize("key", ["uploads/stray.jpg", "uploads/u1/", "uploads/x"])
def test_a_stray_object_under_the_uploads_prefix_is_removed(handlers, aws, key):
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=b"data")
    aws.s3.put_object(Bucket=aws.bucket, Key="other/keep.jpg", Body=b"data")
    event = s3_event(aws.bucket, key, 4)
    [result] = handlers["ingest"].lambda_handler(event, LambdaContext())["results"]
    assert result["outcome"] == "deleted_stray"
    assert objects(aws) == ["other/keep.jpg"]
    # Outside the prefix: not ours to delete.
    event = s3_event(aws.bucket, "other/keep.jpg", 4)
    [result] = handlers["ingest"].lambda_handler(event, LambdaContext())["results"]
    assert result["outcome"] == "ignored" and objects(aws) == ["other/keep.jpg"]


def _session(handlers, files: list[dict]) -> tuple[int, dict]:
    status, body, _ = call(
        handlers["uploads"], api_event("POST", "/uploads", body={"expiry": 60, "files": files})
    )
    return status, body


def test_a_heic_declared_as_nothing_or_octet_stream_goes_by_its_extension(handlers, aws):
    status, body = _session(
        handlers,
        [
            {"filename": "IMG_0001.HEIC"},  # Chrome sends no type for .heic
            {"filename": "IMG_0002.heic", "content_type": "application/octet-stream"},
            {"filename": "pic.avif", "content_type": ""},
        ],
    )
    assert status == 201, body
    signed = {f["filename"]: f["fields"]["Content-Type"] for f in body["files"]}
    assert signed == {
        "IMG_0001.HEIC": "image/heic",
        "IMG_0002.heic": "image/heic",
        "pic.avif": "image/avif",
    }
    data = (PHOTOS / "chelsea_iphone_rot6.heic").read_bytes()
    [result] = deliver(handlers, aws, body["upload_id"], "IMG_0001.HEIC", data)
    assert result["outcome"] == "created"
    state = status_of(handlers, body["upload_id"])["IMG_0001.HEIC"]
    assert state["status"] == "done" and state["note"] is None
    head = aws.s3.head_object(Bucket=aws.bucket, Key=f"images/{result['image_id']}")
    assert head["ContentType"] == "image/heic"


def test_a_generic_type_with_an_unknown_extension_is_judged_by_its_bytes(handlers, aws):
    status, body = _session(
        handlers,
        [{"filename": "scan.xyz", "content_type": ""}, {"filename": "notes.xyz"}],
    )
    assert status == 201, body
    signed = {f["filename"]: f["fields"]["Content-Type"] for f in body["files"]}
    assert set(signed.values()) == {"application/octet-stream"} and len(signed) == 2
    upload_id = body["upload_id"]
    [image] = deliver(handlers, aws, upload_id, "scan.xyz", (PHOTOS / "clock.bmp").read_bytes())
    [text] = deliver(handlers, aws, upload_id, "notes.xyz", b"not a picture at all")
    assert image["outcome"] == "created" and text["outcome"] == "rejected"
    states = status_of(handlers, upload_id)
    assert states["scan.xyz"]["status"] == "done" and states["scan.xyz"]["note"] is None
    assert states["notes.xyz"]["status"] == "rejected"
    assert "not an image" in states["notes.xyz"]["error"]
    head = aws.s3.head_object(Bucket=aws.bucket, Key=f"images/{image['image_id']}")
    assert head["ContentType"] == "image/bmp"  # stored and served as what it is


def test_a_declared_type_the_file_is_not_is_served_as_detected_and_noted(handlers, aws):
    status, body = _session(handlers, [{"filename": "horse.jpg", "content_type": "image/jpeg"}])
    assert status == 201
    data = (PHOTOS / "horse_rgba.png").read_bytes()
    [result] = deliver(handlers, aws, body["upload_id"], "horse.jpg", data)
    assert result["outcome"] == "created"
    state = status_of(handlers, body["upload_id"])["horse.jpg"]
    assert state["status"] == "done"
    assert state["note"] == (
        "declared as image/jpeg but the file is PNG: stored and served as image/png"
    )
    head = aws.s3.head_object(Bucket=aws.bucket, Key=f"images/{result['image_id']}")
    assert head["ContentType"] == "image/png"
    _, image, _ = call(load_handler("images"), api_event("GET", f"/images/{result['image_id']}"))
    assert image["format"] == "PNG"
