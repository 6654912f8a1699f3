"""Phone photos over the local stack: HEIC, HEIF, AVIF and a sideways JPEG through every entry
point (presigned upload is in test_service), then metadata, hashes, diff, similar, crop, ASCII."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
from PIL import Image

from imgsvc import formats
from tests.conftest import PHOTOS

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

MANIFEST = {e["file"]: e for e in json.loads((PHOTOS / "manifest.json").read_text())}
PHONE = ["chelsea_iphone_rot6.heic", "coffee_samsung.heif", "coffee_pixel_rot6.avif"]
SIDEWAYS_JPEG = "coffee_iphone_rot6.jpg"  # 600x400 stored, Orientation 6: shown 400x600
# What a viewer shows, per file: (width, height).
DISPLAYED = {
    "chelsea_iphone_rot6.heic": (451, 300),
    "coffee_samsung.heif": (400, 600),
    "coffee_pixel_rot6.avif": (400, 600),
    SIDEWAYS_JPEG: (400, 600),
}


def _multipart(stack: LocalStackProcess, name: str) -> tuple[int, dict[str, Any]]:
    ext = "." + name.rsplit(".", 1)[1]
    response = stack.session.post(
        stack.url("/images"),
        files={"image": (name, (PHOTOS / name).read_bytes(), formats.EXTENSIONS[ext])},
        data={"name": f"phone {name}"},
    )
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def phone_ids(stack: LocalStackProcess) -> dict[str, str]:
    ids = {}
    for name in [*PHONE, SIDEWAYS_JPEG]:
        status, body = _multipart(stack, name)
        assert status in (200, 201), body  # 200: the presigned tests stored it already
        ids[name] = body["image_id"]
    return ids


@pytest.mark.parametrize("name", [*PHONE, SIDEWAYS_JPEG])
def test_direct_upload_records_complete_metadata(stack, phone_ids, name):
    entry = MANIFEST[name]
    image = stack.session.get(stack.url(f"/images/{phone_ids[name]}")).json()
    assert image["image_id"] == entry["sha256"] and image["sha1"] == entry["sha1"]
    assert (image["format"], image["width"], image["height"], image["mode"]) == (
        entry["format"],
        entry["width"],
        entry["height"],
        entry["mode"],
    )
    assert (image["make"], image["model"]) == (entry["make"], entry["model"])
    assert image["camera"] == f"{entry['make']} - {entry['model']}"
    assert image["taken_at"] is not None
    assert image["orientation"] == entry["orientation"]
    assert (image["display_width"], image["display_height"]) == DISPLAYED[name]
    assert (image["animated"], image["frames"]) == (False, 1)


def test_import_from_a_url_and_analyze_read_phone_formats(stack, photo_server):
    for name in [*PHONE, "nokia_hdr_phone.heif"]:
        entry = MANIFEST[name]
        url = photo_server.url(name)
        analysis = stack.session.post(stack.url("/analyze"), json={"url": url})
        assert analysis.status_code == 200, analysis.text
        assert analysis.json()["result"]["size"] == f"{entry['width']}x{entry['height']}"
        assert analysis.json()["result"]["format"] == entry["format"]
        imported = stack.session.post(stack.url("/images"), json={"url": url, "name": name})
        assert imported.status_code in (200, 201), imported.text
        assert imported.json()["image_id"] == entry["sha256"]
        assert imported.json()["format"] == entry["format"]


def test_a_sideways_photo_and_its_upright_twins_are_one_picture(stack, phone_ids):
    # The JPEG and the AVIF are stored sideways (EXIF tag, irot); the HEIF is upright.
    jpeg, heif, avif = (
        phone_ids[n] for n in (SIDEWAYS_JPEG, "coffee_samsung.heif", "coffee_pixel_rot6.avif")
    )
    for a, b in ((jpeg, heif), (jpeg, avif), (heif, avif)):
        diff = stack.session.get(stack.url(f"/images/{a}/diff/{b}")).json()
        assert diff["similar"] is True and diff["distance"] <= 2, diff
    similar = stack.session.get(stack.url(f"/images/{jpeg}/similar")).json()
    assert {heif, avif} <= {r["image_id"] for r in similar["results"]}


def test_crop_of_heic_is_jpeg_and_of_avif_is_avif(stack, phone_ids):
    for name, made in (("chelsea_iphone_rot6.heic", "JPEG"), ("coffee_pixel_rot6.avif", "AVIF")):
        width, height = DISPLAYED[name]
        box = {"left": 10, "top": 20, "right": width // 2, "bottom": height // 2}
        response = stack.session.post(stack.url(f"/images/{phone_ids[name]}/crop"), json=box)
        assert response.status_code in (200, 201), response.text
        cropped = response.json()
        assert cropped["format"] == made and cropped["derived_from"] == phone_ids[name]
        assert (cropped["display_width"], cropped["display_height"]) == (
            width // 2 - 10,
            height // 2 - 20,
        )
        content = stack.session.get(
            stack.url(f"/images/{cropped['image_id']}/content"), allow_redirects=True
        )
        assert content.status_code == 200
        assert content.headers["Content-Type"] == formats.CONTENT_TYPE_OF[made]
        with Image.open(io.BytesIO(content.content)) as image:
            assert image.format == made


def test_ascii_art_of_a_heic_is_upright(stack, phone_ids):
    art = stack.session.get(
        stack.url(f"/images/{phone_ids['chelsea_iphone_rot6.heic']}/ascii"), params={"width": 80}
    )
    assert art.status_code == 200
    lines = art.text.rstrip("\n").split("\n")
    # 451x300 shown landscape: rows = 300/451 * 80 * 0.5, about 27 (sideways would be 60).
    assert len(lines) == round(300 / 451 * 80 * 0.5)


def _follow(stack: LocalStackProcess, path: str, **params: Any) -> requests.Response:
    """A keyless route's 302 (no API key sent, as an <img> asks), then the S3 link."""
    link = requests.get(stack.url(path), params=params, allow_redirects=False, timeout=30)
    assert link.status_code == 302, link.text
    response = requests.get(link.headers["Location"], timeout=30)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("name", [*PHONE, SIDEWAYS_JPEG])
def test_thumbnails_and_renditions_show_the_picture_upright_in_any_browser(stack, phone_ids, name):
    width, height = DISPLAYED[name]
    image_id = phone_ids[name]
    thumb = _follow(stack, f"/images/{image_id}/thumbnail")
    assert thumb.headers["Content-Type"] == "image/webp"
    scale = 320 / max(width, height)
    with Image.open(io.BytesIO(thumb.content)) as picture:
        assert picture.format == "WEBP"
        assert picture.size == (round(width * scale), round(height * scale))
    listed = stack.session.get(stack.url(f"/images/{image_id}")).json()["thumbnail_url"]
    assert requests.get(listed, timeout=30).content == thumb.content
    for fmt, pillow in (("jpeg", "JPEG"), ("webp", "WEBP"), ("avif", "AVIF")):
        made = _follow(stack, f"/images/{image_id}/rendition", width=200, format=fmt)
        with Image.open(io.BytesIO(made.content)) as picture:
            assert picture.format == pillow
            # 200 rounds up to the ladder's 320, never past the picture's own width.
            shown = min(320, width)
            assert picture.size == (shown, round(height * shown / width))
