"""Thumbnails, renditions and their signed links, over moto: handlers, storage and deletes."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from imgsvc import imaging, renditions, storage
from imgsvc.ingest import ingest_bytes
from tests.conftest import PHOTOS, api_event, call, load_handler


@pytest.fixture
def h(aws):
    return {n: load_handler(n) for n in ("images", "rendition", "uploads")}


def ingest(name: str) -> dict:
    image, _ = ingest_bytes((PHOTOS / name).read_bytes(), filename=name, name=name)
    return image


def keys(aws, prefix: str = "") -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def fetch(url: str) -> tuple[requests.Response, Image.Image]:
    response = requests.get(url, timeout=10)  # moto answers the signed link in-process
    assert response.status_code == 200, response.text[:200]
    return response, Image.open(io.BytesIO(response.content))


def rendition(h, image_id: str, **query: str) -> tuple[int, dict, str]:
    status, body, headers = call(
        h["rendition"], api_event("GET", f"/images/{image_id}/rendition", query=query)
    )
    return status, body, headers.get("Location", "")


# --- signed links ------------------------------------------------------------------------------


def test_links_stay_the_same_inside_a_window_and_change_in_the_next(aws, clock):
    clock.now = clock.now.replace(minute=5)
    first = storage.thumbnail_url("a" * 64)
    clock.now += timedelta(minutes=50)  # 12:55, same hour
    assert storage.thumbnail_url("a" * 64) == first  # from the process's cache of links
    storage._LINKS.clear()  # signed again: still the same link
    assert storage.thumbnail_url("a" * 64) == first
    clock.now += timedelta(minutes=10)  # 13:05, the next window
    later = storage.thumbnail_url("a" * 64)
    assert later != first
    signed = {k: v[0] for k, v in parse_qs(urlsplit(first).query).items()}
    assert signed["X-Amz-Date"].endswith("T120000Z")  # the window's start, not the clock
    assert signed["X-Amz-Expires"] == str(3600 + 300)  # the window plus the link TTL
    assert parse_qs(urlsplit(later).query)["X-Amz-Date"][0].endswith("T130000Z")


def test_other_links_are_still_signed_at_the_current_time(aws, clock):
    # The window signer is chosen only for rendition links: a download link signed right
    # after one carries botocore's own clock, not the window's start.
    clock.now = clock.now.replace(year=2001)
    window = parse_qs(urlsplit(storage.thumbnail_url("a" * 64)).query)
    download = parse_qs(urlsplit(storage.download_url("a" * 64, "JPEG", "x.jpg")).query)
    assert window["X-Amz-Date"][0].startswith("2001")
    assert not download["X-Amz-Date"][0].startswith("2001")
    assert download["X-Amz-Expires"] == ["300"]


# --- thumbnails --------------------------------------------------------------------------------


def test_the_thumbnail_link_of_every_view_works(h, aws):
    image = ingest("coffee_iphone_rot6.jpg")  # stored 600x400, Orientation 6
    image_id = image["image_id"]
    _, page, _ = call(h["images"], api_event("GET", "/images"))
    _, got, _ = call(h["images"], api_event("GET", f"/images/{image_id}"))
    status, _, headers = call(h["images"], api_event("GET", f"/images/{image_id}/thumbnail"))
    assert status == 302
    links = {image["thumbnail_url"], page["images"][0]["thumbnail_url"], got["thumbnail_url"]}
    assert links == {headers["Location"]}  # one window: one link, whoever asks
    response, thumb = fetch(headers["Location"])
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert thumb.size == (213, 320)  # upright: portrait


def test_thumbnail_of_an_unknown_image_is_a_404_in_the_error_shape(h):
    status, body, _ = call(h["images"], api_event("GET", f"/images/{'a' * 64}/thumbnail"))
    assert status == 404 and body["status"] == "error" and body["code"] == "not_found"


def test_a_duplicate_keeps_the_one_thumbnail(aws):
    first = ingest("chelsea_canon.jpg")
    again, duplicate = ingest_bytes((PHOTOS / "chelsea_canon.jpg").read_bytes(), filename="b.jpg")
    assert duplicate and again["thumbnail_url"] == first["thumbnail_url"]
    assert keys(aws, "renditions/") == [f"renditions/{first['image_id']}/thumb.webp"]


# --- renditions --------------------------------------------------------------------------------


def test_ladder_rounds_up_and_never_exceeds_the_picture():
    assert renditions.ladder_width(1, 4000) == 160
    assert renditions.ladder_width(161, 4000) == 320
    assert renditions.ladder_width(1281, 4000) == 1920
    assert renditions.ladder_width(3840, 4000) == 3840
    assert renditions.ladder_width(500, 451) == 451  # the displayed width, not upscaled
    assert renditions.ladder_width(100, 451) == 160


def test_the_handler_publishes_the_formats_renditions_knows(h):
    status, body, _ = rendition(h, "a" * 64, width="100", format="gif")
    assert status == 400 and body["status"] == "error"
    for bad in ("0", "3841", "wide"):
        status, _, _ = rendition(h, "a" * 64, width=bad)
        assert status == 400, bad
    for fmt in renditions.FORMATS:
        status, body, _ = rendition(h, "a" * 64, width="100", format=fmt)
        assert status == 404 and body["code"] == "not_found", fmt


@pytest.mark.parametrize(
    ("fmt", "content_type", "ext"),
    [
        ("webp", "image/webp", "webp"),
        ("jpeg", "image/jpeg", "jpg"),
        ("png", "image/png", "png"),
        ("avif", "image/avif", "avif"),
    ],
)
def test_first_request_renders_later_ones_only_sign(h, aws, monkeypatch, fmt, content_type, ext):
    image_id = ingest("coffee_iphone_rot6.jpg")["image_id"]  # displayed 400x600
    decodes = []
    real = imaging.decode_image  # renditions imports it when it renders
    monkeypatch.setattr(imaging, "decode_image", lambda *a, **k: decodes.append(1) or real(*a, **k))
    status, _, location = rendition(h, image_id, width="200", format=fmt)
    assert status == 302 and decodes == [1]
    assert urlsplit(location).path.endswith(f"/renditions/{image_id}/w320.{ext}")
    response, picture = fetch(location)
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert picture.size == (320, 480)  # upright, the ladder's 320
    for width in ("161", "320"):  # the same rung
        status, _, again = rendition(h, image_id, width=width, format=fmt)
        assert status == 302 and again == location
    assert decodes == [1]  # never decoded again
    status, _, widest = rendition(h, image_id, width="3840", format=fmt)
    assert urlsplit(widest).path.endswith(f"/w400.{ext}")  # the displayed width
    assert fetch(widest)[1].size == (400, 600)


def test_jpeg_renditions_flatten_transparency_onto_white(h, aws):
    source = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent black on the left
    source.paste((200, 0, 0, 255), (100, 0, 200, 100))  # opaque red on the right
    out = io.BytesIO()
    source.save(out, "PNG")
    image, _ = ingest_bytes(out.getvalue(), filename="half.png")
    _, _, location = rendition(h, image["image_id"], width="160", format="jpeg")
    _, picture = fetch(location)
    assert picture.mode == "RGB" and picture.size == (160, 80)
    assert all(v >= 245 for v in picture.getpixel((20, 40)))  # white, not black
    red, _, blue = picture.getpixel((140, 40))
    assert red > 180 and blue < 40
    _, _, webp = rendition(h, image["image_id"], width="160", format="webp")
    assert fetch(webp)[1].getpixel((20, 40))[3] == 0  # WebP keeps the alpha


def test_animations_render_their_first_frame(h, aws):
    frames = [Image.new("RGB", (64, 32), c) for c in ((200, 0, 0), (0, 0, 200))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image, _ = ingest_bytes(out.getvalue(), filename="anim.gif")
    _, _, location = rendition(h, image["image_id"], width="64", format="png")
    red, _, blue = fetch(location)[1].convert("RGB").getpixel((10, 10))
    assert red > 150 and blue < 50
    red, _, blue = fetch(image["thumbnail_url"])[1].convert("RGB").getpixel((10, 10))
    assert red > 150 and blue < 50


def test_a_delete_during_rendering_leaves_no_orphan(h, aws, monkeypatch):
    image_id = ingest("chelsea_canon.jpg")["image_id"]
    real_render = renditions.render

    def render_then_delete(*args, **kwargs):
        data = real_render(*args, **kwargs)
        status, _, _ = call(h["images"], api_event("DELETE", f"/images/{image_id}"))
        assert status == 200  # the delete ran while the rendition was being made
        return data

    monkeypatch.setattr(renditions, "render", render_then_delete)
    status, body, _ = rendition(h, image_id, width="320", format="webp")
    assert status == 404 and body["code"] == "not_found"
    assert keys(aws) == []


# --- deletes -----------------------------------------------------------------------------------


def test_deleting_an_image_deletes_its_thumbnail_and_renditions(h, aws):
    keep = ingest("chelsea_canon.jpg")["image_id"]
    gone = ingest("coffee_iphone_rot6.jpg")["image_id"]
    for image_id in (keep, gone):
        for fmt in ("webp", "jpeg"):
            assert rendition(h, image_id, width="160", format=fmt)[0] == 302
    assert len(keys(aws, f"renditions/{gone}/")) == 3
    status, _, _ = call(h["images"], api_event("DELETE", f"/images/{gone}"))
    assert status == 200
    assert keys(aws, f"renditions/{gone}/") == []
    assert len(keys(aws, f"renditions/{keep}/")) == 3  # another image's stay
    status, body, _ = call(h["images"], api_event("DELETE", "/images", query={"confirm": "true"}))
    assert status == 200 and body["deleted"] == 1
    assert keys(aws) == []


def test_upload_state_carries_the_thumbnail_of_done_files(h, aws):
    status, session, _ = call(
        h["uploads"],
        api_event(
            "POST",
            "/uploads",
            body={"files": [{"filename": "c.jpg", "content_type": "image/jpeg"}]},
        ),
    )
    assert status == 201
    upload_id = session["upload_id"]
    key = f"uploads/{upload_id}/c.jpg"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=(PHOTOS / "chelsea_canon.jpg").read_bytes())
    from imgsvc.ingest import ingest_upload_object

    result = ingest_upload_object(key, None)
    _, state, _ = call(h["uploads"], api_event("GET", f"/uploads/{upload_id}"))
    done = state["files"]["c.jpg"]
    assert done["status"] == "done"
    assert done["thumbnail_url"] == storage.thumbnail_url(result["image_id"])
    fetch(done["thumbnail_url"])


def test_ensure_thumbnail_writes_a_missing_one_once(aws):
    image = ingest("coffee_iphone_rot6.jpg")
    key = f"renditions/{image['image_id']}/thumb.webp"
    aws.s3.delete_object(Bucket=aws.bucket, Key=key)  # as for an image from before thumbnails
    assert renditions.ensure_thumbnail(image["image_id"]) is True
    assert renditions.ensure_thumbnail(image["image_id"]) is False
    _, thumb = fetch(image["thumbnail_url"])
    assert thumb.size == (213, 320)
