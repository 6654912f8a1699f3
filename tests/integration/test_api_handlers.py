"""API handlers driven by REST proxy events: uploads, images, direct upload, crop, ASCII."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
import requests
from PIL import Image

from imgsvc import records, stats
from tests.conftest import (
    PHOTOS,
    LambdaContext,
    api_event,
    call,
    load_event,
    load_handler,
    response_headers,
)


@pytest.fixture
def h(aws):
    return {
        n: load_handler(n) for n in ("uploads", "images", "import_image", "crop", "ascii", "status")
    }


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A real multipart body, encoded by requests (not by the code under test)."""
    req = requests.Request("POST", "http://x/", data=fields, files=files).prepare()
    return req.body, req.headers["Content-Type"]


def direct_upload(h, path: str, name: str | None = None, desc: str | None = None):
    fields = {k: v for k, v in (("name", name), ("desc", desc)) if v is not None}
    body, ctype = multipart(fields, {"image": (path, (PHOTOS / path).read_bytes(), "image/jpeg")})
    return call(
        h["import_image"], api_event("POST", "/images", body=body, headers={"Content-Type": ctype})
    )


# --- uploads -----------------------------------------------------------------------------------


def test_create_upload_presigns_a_post_per_file(h, aws):
    status, body, _ = call(h["uploads"], load_event("uploads_create.json"))
    assert status == 201
    uuid.UUID(body["upload_id"])
    assert [f["filename"] for f in body["files"]] == ["foo-1.jpg", "a+b c.png"]
    post = body["files"][0]
    assert post["fields"]["key"] == f"uploads/{body['upload_id']}/foo-1.jpg"
    assert post["fields"]["Content-Type"] == "image/jpeg"
    import base64
    import json

    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    assert ["content-length-range", 1, 25 * 1024 * 1024] in policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in policy["conditions"]
    status, state, _ = call(h["uploads"], api_event("GET", f"/uploads/{body['upload_id']}"))
    assert status == 200
    assert state["files"]["foo-1.jpg"] == {
        "status": "pending",
        "image_id": None,
        "duplicate": False,
        "error": None,
        "note": None,
        "thumbnail_url": None,
    }


def test_upload_session_without_files_then_add_files(h):
    status, body, _ = call(h["uploads"], api_event("POST", "/uploads", body={"expiry": 60}))
    assert status == 201 and body["files"] == []
    upload_id = body["upload_id"]
    files = {"files": [{"filename": "x.png", "content_type": "image/png"}]}
    status, added, _ = call(
        h["uploads"], api_event("POST", f"/uploads/{upload_id}/files", body=files)
    )
    assert status == 201 and added["files"][0]["filename"] == "x.png"
    status, again, _ = call(
        h["uploads"], api_event("POST", f"/uploads/{upload_id}/files", body=files)
    )
    assert status == 409 and "x.png" in again["message"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"expiry": 0}, 400, "expiry"),
        ({"expiry": 3601}, 400, "expiry"),
        ({"expiry": "soon"}, 400, "expiry"),
        ({"files": [{"filename": "a.svg", "content_type": "image/svg+xml"}]}, 400, "not accepted"),
        (
            {"files": [{"filename": "../a.jpg", "content_type": "image/jpeg"}]},
            400,
            "plain file name",
        ),
        (
            {
                "files": [
                    {"filename": "a.jpg", "content_type": "image/jpeg", "size": 26 * 1024 * 1024}
                ]
            },
            413,
            "limit",
        ),
        (
            {"files": [{"filename": f"{i}.jpg", "content_type": "image/jpeg"} for i in range(51)]},
            400,
            "files",
        ),
        ({"files": [{"filename": "a.jpg", "content_type": "image/jpeg"}] * 2}, 409, "once"),
        ({"nope": 1}, 400, "nope"),
        ("not json", 400, "JSON"),
        ([1, 2], 400, "invalid request"),
    ],
)
def test_upload_requests_are_validated(h, body, status, needle):
    got_status, got, _ = call(h["uploads"], api_event("POST", "/uploads", body=body))
    assert got_status == status
    assert got["status"] == "error" and needle in got["message"]


def test_unknown_expired_and_malformed_sessions(h):
    unknown = str(uuid.uuid4())
    status, body, _ = call(h["uploads"], api_event("GET", f"/uploads/{unknown}"))
    assert status == 404 and body["code"] == "not_found"
    status, body, _ = call(h["uploads"], api_event("GET", "/uploads/not-a-uuid"))
    assert status == 400
    expired = str(uuid.uuid4())
    records.create_session(expired, records.now_utc() - timedelta(seconds=5), [])
    files = {"files": [{"filename": "x.png", "content_type": "image/png"}]}
    status, body, _ = call(h["uploads"], api_event("POST", f"/uploads/{expired}/files", body=files))
    assert status == 410 and "expired" in body["message"]


# --- the image library -------------------------------------------------------------------------


def test_direct_upload_then_get_list_content_delete(h, aws, manifest):
    status, image, _ = direct_upload(h, "chelsea_canon.jpg", name="Chelsea", desc="a cat")
    assert status == 201
    expected = manifest["chelsea_canon.jpg"]
    assert (
        image["image_id"] == expected["sha256"]
        and image["name"] == "Chelsea"
        and image["desc"] == "a cat"
    )
    status, again, _ = direct_upload(h, "chelsea_canon.jpg")
    assert status == 200 and again["image_id"] == image["image_id"]
    status, got, _ = call(h["images"], api_event("GET", f"/images/{image['image_id']}"))
    assert status == 200 and got["model"] == expected["model"] and got["created_at"]
    status, page, _ = call(h["images"], api_event("GET", "/images"))
    assert [i["image_id"] for i in page["images"]] == [image["image_id"]] and page[
        "next_cursor"
    ] is None
    response = h["images"].lambda_handler(
        api_event("GET", f"/images/{image['image_id']}/content"), LambdaContext()
    )
    assert response["statusCode"] == 302
    location = response_headers(response)["Location"]
    assert f"images/{image['image_id']}" in location and "Signature" in location
    status, body, _ = call(h["images"], api_event("DELETE", f"/images/{image['image_id']}"))
    assert status == 200 and body["status"] == "deleted"
    assert call(h["images"], api_event("GET", f"/images/{image['image_id']}"))[0] == 404
    assert call(h["images"], api_event("DELETE", f"/images/{image['image_id']}"))[0] == 404
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.bucket)
    s = stats.get_stats()
    assert s == stats.recount() and s["total_images"] == 0


def test_list_pagination_and_bad_inputs(h):
    ids = [
        direct_upload(h, p)[1]["image_id"]
        for p in ("chelsea_canon.jpg", "horse_rgba.png", "brick.webp")
    ]
    _, page, _ = call(h["images"], api_event("GET", "/images", query={"limit": "2"}))
    assert [i["image_id"] for i in page["images"]] == ids[::-1][:2]
    _, rest, _ = call(
        h["images"],
        api_event("GET", "/images", query={"limit": "2", "cursor": page["next_cursor"]}),
    )
    assert [i["image_id"] for i in rest["images"]] == [ids[0]] and rest["next_cursor"] is None
    for query in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}):
        assert call(h["images"], api_event("GET", "/images", query=query))[0] == 400, query
    assert call(h["images"], api_event("GET", "/images/NOTHEX"))[0] == 400
    assert call(h["images"], api_event("GET", f"/images/{'a' * 64}"))[0] == 404


def test_delete_all_needs_confirmation(h):
    for p in ("chelsea_canon.jpg", "horse_rgba.png"):
        direct_upload(h, p)
    status, body, _ = call(h["images"], api_event("DELETE", "/images"))
    assert status == 400 and "confirm" in body["message"]
    status, body, _ = call(h["images"], api_event("DELETE", "/images", query={"confirm": "true"}))
    assert status == 200 and body == {"status": "deleted", "deleted": 2, "more": False}
    assert stats.get_stats()["total_images"] == 0


def test_direct_upload_errors(h):
    status, body, _ = direct_upload(h, "bad_not_an_image.jpg")
    assert status == 422 and body["code"] == "invalid_image"
    big, ctype = multipart(
        {}, {"image": ("big.jpg", b"\xff" * (4 * 1024 * 1024 + 1), "image/jpeg")}
    )
    status, body, _ = call(
        h["import_image"], api_event("POST", "/images", body=big, headers={"Content-Type": ctype})
    )
    assert status == 413 and "POST /uploads" in body["message"]
    status, body, _ = call(
        h["import_image"],
        api_event("POST", "/images", body=b"x", headers={"Content-Type": "text/plain"}),
    )
    assert status == 415
    form, ctype = multipart({"name": "x"}, {"doc": ("a.txt", b"x", "text/plain")})
    status, body, _ = call(
        h["import_image"], api_event("POST", "/images", body=form, headers={"Content-Type": ctype})
    )
    assert status == 400 and "image" in body["message"]
    assert stats.get_stats()["total_images"] == 0  # nothing half-written


# --- crop and ASCII ----------------------------------------------------------------------------


def test_crop_rotated_photo_in_display_coordinates(h):
    _, source, _ = direct_upload(h, "coffee_iphone_rot6.jpg")
    assert (source["display_width"], source["display_height"]) == (400, 600)
    box = {"left": 50, "top": 100, "right": 350, "bottom": 500}
    status, crop, _ = call(
        h["crop"], api_event("POST", f"/images/{source['image_id']}/crop", body=box)
    )
    assert status == 201
    assert crop["derived_from"] == source["image_id"] and crop["image_id"] != source["image_id"]
    assert (crop["width"], crop["height"]) == (300, 400) and crop["orientation"] in (None, 1)
    assert crop["format"] == "JPEG"
    status, again, _ = call(
        h["crop"], api_event("POST", f"/images/{source['image_id']}/crop", body=box)
    )
    assert status == 200 and again["image_id"] == crop["image_id"]


@pytest.mark.parametrize(
    "box",
    [
        {"left": 0, "top": 0, "right": 0, "bottom": 10},
        {"left": 10, "top": 0, "right": 5, "bottom": 10},
        {"left": -1, "top": 0, "right": 5, "bottom": 10},
        {"left": 0, "top": 0, "right": 401, "bottom": 10},
        {"left": 0, "top": 0, "right": 10},
        {"left": "0", "top": 0, "right": 10, "bottom": 10},
    ],
)
def test_crop_rejects_bad_boxes(h, box):
    _, source, _ = direct_upload(h, "coffee_iphone_rot6.jpg")
    status, body, _ = call(
        h["crop"], api_event("POST", f"/images/{source['image_id']}/crop", body=box)
    )
    assert status == 400
    if set(box) == {"left", "top", "right", "bottom"} and all(
        isinstance(v, int) for v in box.values()
    ):
        assert "400" in body["message"] and "600" in body["message"]


def test_crop_missing_image(h):
    box = {"left": 0, "top": 0, "right": 1, "bottom": 1}
    assert call(h["crop"], api_event("POST", f"/images/{'b' * 64}/crop", body=box))[0] == 404


def test_ascii_is_cached_by_id_width_and_version(h, monkeypatch):
    _, source, _ = direct_upload(h, "coffee_iphone_rot6.jpg")
    event = api_event("GET", f"/images/{source['image_id']}/ascii", query={"width": "40"})
    response = h["ascii"].lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 200 and response_headers(response)["Content-Type"].startswith(
        "text/plain"
    )
    lines = response["body"].rstrip("\n").split("\n")
    assert (
        all(len(line) == 40 for line in lines) and len(lines) > 40 // 2
    )  # portrait after rotation
    again = h["ascii"].lambda_handler(event, LambdaContext())
    assert response_headers(again)["X-Cache"] == "hit" and again["body"] == response["body"]
    import imgsvc.imaging

    monkeypatch.setattr(imgsvc.imaging, "ASCII_VERSION", "test-next")
    third = h["ascii"].lambda_handler(event, LambdaContext())
    assert response_headers(third)["X-Cache"] == "miss"
    status, body, _ = call(
        h["ascii"], api_event("GET", f"/images/{source['image_id']}/ascii", query={"width": "9"})
    )
    assert status == 400 and "10" in body["message"]


def test_status_and_unknown_route(h):
    status, body, _ = call(h["status"], load_event("status.json"))
    assert status == 200 and body["status"] == "ok" and body["version"]
    status, body, _ = call(h["status"], api_event("GET", "/nope"))
    assert status == 404 and body == {
        "status": "error",
        "code": "not_found",
        "message": body["message"],
    }


def test_generated_png_keeps_alpha_through_direct_upload(h):
    buf = io.BytesIO()
    Image.new("RGBA", (20, 10), (255, 0, 0, 0)).save(buf, "PNG")
    body, ctype = multipart({}, {"image": ("t.png", buf.getvalue(), "image/png")})
    status, image, _ = call(
        h["import_image"], api_event("POST", "/images", body=body, headers={"Content-Type": ctype})
    )
    assert status == 201 and image["mode"] == "RGBA" and image["format"] == "PNG"


# --- found by review: clean 4xx for odd input, no stale state -------------------------------


def test_deeply_nested_json_is_a_400(h):
    body = "[" * 100_000 + "]" * 100_000
    status, got, _ = call(h["uploads"], api_event("POST", "/uploads", body=body))
    assert status == 400 and "nested too deeply" in got["message"]


def test_non_utf8_form_field_is_a_400_and_empty_name_falls_back(h):
    image = ("gravel.gif", (PHOTOS / "gravel.gif").read_bytes(), "image/gif")
    body, ctype = multipart({}, {"image": image, "desc": ("d.txt", b"\xff\xfe", "text/plain")})
    status, got, _ = call(
        h["import_image"], api_event("POST", "/images", body=body, headers={"Content-Type": ctype})
    )
    assert status == 400 and "UTF-8" in got["message"]
    body, ctype = multipart({"name": ""}, {"image": image})
    status, got, _ = call(
        h["import_image"], api_event("POST", "/images", body=body, headers={"Content-Type": ctype})
    )
    assert status == 201 and got["name"] == "gravel.gif"


def test_filename_limit_is_in_characters_and_types_are_strict(h):
    long_name = "\N{GRINNING FACE}" * 197 + ".jpg"  # 201 characters
    for body in (
        {"files": [{"filename": long_name, "content_type": "image/jpeg"}]},
        {"files": [{"filename": "a\u202egpj.exe", "content_type": "image/jpeg"}]},
        {"files": [{"filename": "a.jpg\n", "content_type": "image/jpeg"}]},
        {"files": [{"filename": "a.jpg", "content_type": "IMAGE/JPEG"}]},
        {"expiry": True},
        {"expiry": "60"},
        {"expiry": 60.5},
        {"files": [{"filename": "a.jpg", "content_type": "image/jpeg", "size": "9"}]},
    ):
        assert call(h["uploads"], api_event("POST", "/uploads", body=body))[0] == 400, body
    # 200 four-byte characters (800 bytes) still fit in an S3 key; 60.0 is an integer in JSON.
    name = "\N{GRINNING FACE}" * 196 + ".jpg"
    ok = {"expiry": 60.0, "files": [{"filename": name, "content_type": "image/jpeg"}]}
    status, body, _ = call(h["uploads"], api_event("POST", "/uploads", body=ok))
    assert status == 201 and body["files"][0]["filename"] == name


def test_files_that_never_arrive_are_reported_after_expiry(h, monkeypatch):
    from imgsvc import uploads

    _, body, _ = call(
        h["uploads"],
        api_event(
            "POST",
            "/uploads",
            body={"expiry": 1, "files": [{"filename": "a.jpg", "content_type": "image/jpeg"}]},
        ),
    )
    upload_id = body["upload_id"]
    state = call(h["uploads"], api_event("GET", f"/uploads/{upload_id}"))[1]["files"]["a.jpg"]
    assert state["status"] == "pending"
    later = records.now_utc() + timedelta(seconds=2 + uploads.ARRIVAL_GRACE_SECONDS)
    monkeypatch.setattr(records, "now_utc", lambda: later)
    state = call(h["uploads"], api_event("GET", f"/uploads/{upload_id}"))[1]["files"]["a.jpg"]
    assert state["status"] == "rejected" and "expired" in state["error"]


def test_ascii_of_a_deleted_image_is_a_404(h):
    _, source, _ = direct_upload(h, "chelsea_canon.jpg")
    path = f"/images/{source['image_id']}/ascii"
    assert call(h["ascii"], api_event("GET", path))[0] == 200
    assert call(h["images"], api_event("DELETE", f"/images/{source['image_id']}"))[0] == 200
    assert call(h["ascii"], api_event("GET", path))[0] == 404
