"""The service end to end: real HTTP to the local stack, presigned POSTs to moto's S3,
ingest through the S3 notification, and every route a client uses."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import requests
from PIL import Image

from imgsvc import formats
from imgsvc_client import ApiError, Client
from tests.conftest import PHOTOS

if TYPE_CHECKING:
    from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

MANIFEST = {e["file"]: e for e in json.loads((PHOTOS / "manifest.json").read_text())}
GOOD = sorted(n for n, e in MANIFEST.items() if e.get("pillow_opens") and not n.startswith("bad_"))
# S3 refuses an empty file itself (content-length-range starts at 1): see test_an_empty_file.
BAD = sorted(n for n in MANIFEST if n.startswith("bad_") and (PHOTOS / n).stat().st_size)
TYPES = {ext.lstrip("."): t for ext, t in formats.EXTENSIONS.items()}
# phash neighbours within distance 8 among the test photos (measured with imagehash).
# The hash is of the picture as displayed: a sideways photo with its orientation (the JPEG's
# EXIF tag, the AVIF's and HEIC's irot) matches its upright copies, whatever the format;
# coffee_sony_padded.jpg, the same pixels stored sideways without a tag, matches none.
NEAR_DUPLICATES = [
    {"chelsea_canon.jpg", "chelsea_pixel.jpg", "chelsea_iphone_rot6.heic"},
    {"coffee_iphone_rot6.jpg", "coffee_samsung.heif", "coffee_pixel_rot6.avif"},
    {"horse_rgba.png", "horse_alpha.heic", "horse_alpha.avif"},
]


def upload(stack: LocalStackProcess, files: list[tuple[str, bytes]], workers: int = 1) -> str:
    """Start an upload session (adding files 50 at a time) and POST every file to S3."""
    specs = [{"filename": n, "content_type": TYPES[n.rsplit(".", 1)[1]]} for n, _ in files]
    response = stack.session.post(stack.url("/uploads"), json={"expiry": 600, "files": specs[:50]})
    assert response.status_code == 201, response.text
    upload_id = response.json()["upload_id"]
    posts = response.json()["files"]
    for start in range(50, len(specs), 50):
        more = stack.session.post(
            stack.url(f"/uploads/{upload_id}/files"), json={"files": specs[start : start + 50]}
        )
        assert more.status_code == 201, more.text
        posts += more.json()["files"]

    def send(item: tuple[dict[str, Any], tuple[str, bytes]]) -> None:
        post, (name, data) = item
        assert post["filename"] == name
        sent = requests.post(
            post["url"], data=post["fields"], files={"file": (name, data)}, timeout=30
        )
        assert sent.status_code in (200, 201, 204), sent.text

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, zip(posts, files, strict=True)))
    return upload_id


def wait_done(stack: LocalStackProcess, upload_id: str, timeout: float = 120) -> dict[str, Any]:
    return Client(stack.api_url, stack.api_key).wait_upload(upload_id, timeout=timeout)


def photo(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def get_stats(stack: LocalStackProcess) -> dict[str, Any]:
    response = stack.session.get(stack.url("/stats"))
    assert response.status_code == 200
    return response.json()


def recount(stack: LocalStackProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The statistics from a full scan of the stack's table (through the moto server)."""
    from imgsvc import aws
    from imgsvc.stats import recount as full_recount

    with monkeypatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", stack.aws_endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", stack.info["region"])
        mp.setenv("TABLE_NAME", stack.table_name)
        aws.reset()
        try:
            return full_recount()
        finally:
            aws.reset()


@pytest.fixture(scope="module")
def library(stack: LocalStackProcess) -> SimpleNamespace:
    """Every test photo, good and bad, uploaded once with presigned POSTs.

    ``files``: name -> upload file state; ``ids``: name -> image id.
    """
    files = wait_done(stack, upload(stack, [(n, photo(n)) for n in GOOD + BAD]))
    return SimpleNamespace(files=files, ids={n: f["image_id"] for n, f in files.items()})


def test_every_photo_through_presigned_post(stack, library):
    files = library.files
    for name in GOOD:
        m = MANIFEST[name]
        state = files[name]
        assert state["status"] == "done" and state["error"] is None, name
        image = stack.session.get(stack.url(f"/images/{state['image_id']}")).json()
        for field in ("format", "width", "height", "mode", "make", "model", "orientation"):
            assert image[field] == m[field], (name, field)
        assert (image["sha256"], image["sha1"], image["bytes"]) == (
            m["sha256"],
            m["sha1"],
            m["bytes"],
        )
        assert image["image_id"] == m["sha256"]
        taken = m["datetime_original"]
        assert image["taken_at"] == (
            datetime.strptime(taken, "%Y:%m:%d %H:%M:%S").isoformat() if taken else None
        )
        swapped = m["orientation"] in (5, 6, 7, 8)
        display = (m["height"], m["width"]) if swapped else (m["width"], m["height"])
        assert (image["display_width"], image["display_height"]) == display
        assert len(image["phash"]) == 16
    for name in BAD:
        assert files[name]["status"] == "rejected", name
        assert files[name]["image_id"] is None and files[name]["error"], name
    # nothing is left under uploads/: accepted files were moved, rejected ones deleted
    listing = stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix="uploads/")
    assert listing.get("KeyCount", 0) == 0


def test_an_empty_file_is_refused_by_the_post_policy(stack):
    response = stack.session.post(
        stack.url("/uploads"), json={"files": [{"filename": "e.jpg", "content_type": "image/jpeg"}]}
    )
    (post,) = response.json()["files"]
    sent = requests.post(post["url"], data=post["fields"], files={"file": ("e.jpg", b"")})
    assert sent.status_code == 400 and "<Code>EntityTooSmall</Code>" in sent.text
    assert (
        stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix=post["fields"]["key"])["KeyCount"]
        == 0
    )


def test_the_same_photo_twice_is_one_image(stack, library):  # library holds the first copy
    upload_id = upload(stack, [("again.jpg", photo("astronaut_nikon.jpg"))])
    state = wait_done(stack, upload_id)["again.jpg"]
    assert state.pop("thumbnail_url") == library.files["astronaut_nikon.jpg"]["thumbnail_url"]
    assert state == {
        "status": "done",
        "image_id": MANIFEST["astronaut_nikon.jpg"]["sha256"],
        "duplicate": True,
        "error": None,
        "note": None,
    }
    keys = stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix="images/")["Contents"]
    assert sum(k["Key"].endswith(state["image_id"]) for k in keys) == 1


def test_content_redirects_to_the_stored_bytes(stack, library, tmp_path):
    ids = library.ids
    image_id = ids["horse_rgba.png"]
    response = requests.get(stack.url(f"/images/{image_id}/content"), allow_redirects=False)
    assert response.status_code == 302  # no API key needed
    content = requests.get(response.headers["Location"], timeout=10)
    assert content.status_code == 200 and content.content == photo("horse_rgba.png")
    keyless = Client(stack.api_url)  # the client follows the same link without a key
    assert keyless.download(image_id, tmp_path / "h.png") == len(photo("horse_rgba.png"))
    assert (tmp_path / "h.png").read_bytes() == photo("horse_rgba.png")


def fetch_picture(url: str) -> tuple[requests.Response, Image.Image]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text[:200]
    return response, Image.open(io.BytesIO(response.content))


def test_thumbnails_over_http(stack, library):
    image_id = library.ids["coffee_iphone_rot6.jpg"]  # stored 600x400 with Orientation 6
    link = library.files["coffee_iphone_rot6.jpg"]["thumbnail_url"]
    assert stack.session.get(stack.url(f"/images/{image_id}")).json()["thumbnail_url"] == link
    redirect = requests.get(stack.url(f"/images/{image_id}/thumbnail"), allow_redirects=False)
    assert redirect.status_code == 302  # no API key needed
    assert redirect.headers["Location"] == link  # the same link inside a window
    response, thumb = fetch_picture(link)
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert thumb.format == "WEBP" and thumb.size == (213, 320)  # upright: portrait
    page = stack.session.get(stack.url("/images"), params={"limit": 100}).json()
    for image in page["images"]:  # one call, every thumbnail, each at most 320 px
        assert max(fetch_picture(image["thumbnail_url"])[1].size) <= 320, image["name"]
    missing = requests.get(stack.url(f"/images/{'e' * 64}/thumbnail"), allow_redirects=False)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_renditions_over_http(stack, library):
    image_id = library.ids["coffee_iphone_rot6.jpg"]
    path = stack.url(f"/images/{image_id}/rendition")
    first = requests.get(path, params={"width": 300, "format": "avif"}, allow_redirects=False)
    assert first.status_code == 302, first.text  # no API key needed
    location = first.headers["Location"]
    assert f"/renditions/{image_id}/w320.avif?" in location
    response, picture = fetch_picture(location)
    assert response.headers["Content-Type"] == "image/avif"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert picture.format == "AVIF" and picture.size == (320, 480)
    again = requests.get(path, params={"width": 320, "format": "avif"}, allow_redirects=False)
    assert again.headers["Location"] == location
    widest = requests.get(path, params={"width": 3840}, allow_redirects=False)
    assert f"/renditions/{image_id}/w400.webp?" in widest.headers["Location"]
    assert fetch_picture(widest.headers["Location"])[1].size == (400, 600)
    bad = requests.get(path, params={"width": 0}, allow_redirects=False)
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_deleting_an_image_deletes_its_renditions(stack, library):
    response = stack.session.post(
        stack.url("/images"), files={"image": ("d.png", noise_png(9), "image/png")}
    )
    assert response.status_code == 201, response.text
    image_id = response.json()["image_id"]
    rendition = stack.url(f"/images/{image_id}/rendition")
    for fmt in ("jpeg", "png"):
        got = requests.get(rendition, params={"width": 64, "format": fmt}, allow_redirects=False)
        assert got.status_code == 302
    prefix = f"renditions/{image_id}/"

    def keys() -> int:
        return stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix=prefix)["KeyCount"]

    assert keys() == 3  # the thumbnail and two renditions
    assert stack.session.delete(stack.url(f"/images/{image_id}")).status_code == 200
    assert keys() == 0


def noise_png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_100_parallel_uploads_of_50_photos_twice(stack, library, monkeypatch):
    before = get_stats(stack)
    distinct = [noise_png(1000 + i) for i in range(50)]
    files = [(f"p{i:02d}-{copy}.png", distinct[i]) for i in range(50) for copy in (0, 1)]
    upload_id = upload(stack, files, workers=16)
    states = wait_done(stack, upload_id, timeout=300)
    assert all(s["status"] == "done" for s in states.values())
    image_ids = {s["image_id"] for s in states.values()}
    assert len(image_ids) == 50
    assert sum(s["duplicate"] for s in states.values()) == 50
    after = get_stats(stack)
    today = max(after["uploads_per_day"])
    assert after["total_images"] - before["total_images"] == 50
    assert after["uploads_per_day"][today] - before["uploads_per_day"][today] == 100
    assert after["formats"]["PNG"] - before["formats"].get("PNG", 0) == 50
    assert after == recount(stack, monkeypatch)


def test_crop_a_rotated_photo(stack, library):
    ids = library.ids
    source = ids["coffee_iphone_rot6.jpg"]
    box = {"left": 40, "top": 60, "right": 340, "bottom": 460}  # display: 400x600
    response = stack.session.post(stack.url(f"/images/{source}/crop"), json=box)
    assert response.status_code == 201, response.text
    crop = response.json()
    assert (crop["width"], crop["height"]) == (300, 400)
    assert crop["derived_from"] == source and crop["orientation"] in (None, 1)
    location = requests.get(stack.url(f"/images/{crop['image_id']}/content"), allow_redirects=False)
    image = Image.open(io.BytesIO(requests.get(location.headers["Location"], timeout=10).content))
    assert image.size == (300, 400) and image.getexif().get(274) in (None, 1)
    bad = stack.session.post(stack.url(f"/images/{source}/crop"), json={**box, "right": 401})
    assert bad.status_code == 400 and "400" in bad.json()["message"]


def test_diff_near_duplicate_and_unrelated(stack, library):
    ids = library.ids
    near = stack.session.get(
        stack.url(f"/images/{ids['chelsea_canon.jpg']}/diff/{ids['chelsea_pixel.jpg']}")
    ).json()
    far = stack.session.get(
        stack.url(f"/images/{ids['chelsea_canon.jpg']}/diff/{ids['motorcycle_left.jpg']}")
    ).json()
    assert near["algorithm"] == "phash" and near["similar"] is True and near["distance"] <= 4
    assert far["similar"] is False and far["distance"] > 20


def test_similar_finds_the_near_duplicates_and_nothing_else(stack, library):
    ids = library.ids
    photo_ids = {ids[n]: n for n in GOOD}
    for name in GOOD:
        response = stack.session.get(stack.url(f"/images/{ids[name]}/similar"))
        assert response.status_code == 200
        found = {
            photo_ids[r["image_id"]]
            for r in response.json()["results"]
            if r["image_id"] in photo_ids
        }
        expected = next((group - {name} for group in NEAR_DUPLICATES if name in group), set())
        assert found == expected, name


def test_ascii_for_every_good_photo(stack, library):
    ids = library.ids
    for name in GOOD:
        response = stack.session.get(stack.url(f"/images/{ids[name]}/ascii"), params={"width": 60})
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith("text/plain")
        lines = response.text.rstrip("\n").split("\n")
        assert all(len(line) == 60 for line in lines) and len(lines) >= 5, name
        assert len(set(response.text) - {"\n"}) > 1, name  # a picture, not a flat block


def test_analyze_and_history(stack, photo_server):
    api = Client(stack.api_url, stack.api_key)
    url = photo_server.url("brick.webp")
    first, second = api.analyze(url), api.analyze(url)
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert first["result"] == {
        "format": "WEBP", "size": "512x512", "width": 512, "height": 512, "mode": "RGB",
        "animated": False, "frames": None,  # WebP's header flags animation, does not count
    }  # fmt: skip
    history = api.history()
    assert history["cached_items"][0] == url and history["count"] == len(history["cached_items"])
    with pytest.raises(ApiError) as bad:
        api.analyze("file:///etc/passwd")
    assert bad.value.status == 400 and bad.value.code == "blocked_url"


def test_direct_upload_and_delete(stack, library, monkeypatch):
    data = noise_png(7)
    response = stack.session.post(
        stack.url("/images"), files={"image": ("n.png", data, "image/png")}, data={"name": "noise"}
    )
    assert response.status_code == 201, response.text
    image = response.json()
    before = get_stats(stack)
    assert stack.session.delete(stack.url(f"/images/{image['image_id']}")).status_code == 200
    assert stack.session.get(stack.url(f"/images/{image['image_id']}")).status_code == 404
    after = get_stats(stack)
    assert after["total_images"] == before["total_images"] - 1
    assert after["uploads_per_day"] == before["uploads_per_day"]  # history stays
    assert after == recount(stack, monkeypatch)


def test_stats_equal_a_recount(stack, library, monkeypatch):
    stats = get_stats(stack)
    assert len(stats["uploads_per_day"]) == 30
    assert stats == recount(stack, monkeypatch)
    assert "NIKON CORPORATION - NIKON D850" in stats["top_camera_models"]


def test_deletes_racing_parallel_ingests_of_the_same_bytes(stack, library, monkeypatch):
    """Parallel presigned uploads (three copies of each photo) while the same images are
    deleted again and again: every record keeps its object, every object has its record."""
    photos = [noise_png(5000 + i) for i in range(12)]
    ids = []
    for i, data in enumerate(photos):
        response = stack.session.post(
            stack.url("/images"), files={"image": (f"r{i}.png", data, "image/png")}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["image_id"])
    files = [(f"r{i:02d}-{copy}.png", photos[i]) for i in range(12) for copy in range(3)]

    def delete(image_id: str) -> int:
        return stack.session.delete(stack.url(f"/images/{image_id}")).status_code

    with ThreadPoolExecutor(8) as pool:
        deletes = [pool.submit(delete, image_id) for image_id in ids * 3]
        upload_id = upload(stack, files, workers=8)
        codes = [d.result() for d in deletes]
    assert set(codes) <= {200, 404, 409} and 200 in codes, codes
    states = wait_done(stack, upload_id, timeout=300)
    assert all(s["status"] == "done" for s in states.values()), states
    keys = stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix="images/").get("Contents", [])
    stored = {k["Key"].rsplit("/", 1)[1] for k in keys}
    thumbs = stack.s3.list_objects_v2(Bucket=stack.bucket_name, Prefix="renditions/")
    with_thumb = {k["Key"].split("/")[1] for k in thumbs.get("Contents", [])}
    for image_id in ids:
        recorded = stack.session.get(stack.url(f"/images/{image_id}")).status_code == 200
        assert recorded == (image_id in stored), image_id
        assert recorded == (image_id in with_thumb), image_id  # the thumbnail goes with it
    assert get_stats(stack) == recount(stack, monkeypatch)
