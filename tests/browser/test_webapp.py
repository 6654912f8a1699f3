"""The web app in a real headless Chromium, against the local stack under /prod/: upload
photos (a duplicate and a broken file among them), the gallery, an image page (crop by
dragging, compare, ASCII art), delete, the stats; no console errors; screenshots of each page."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import Browser
from tests.e2e.conftest import PHOTOS, LocalStackProcess
from tests.support.photo_server import PhotoServer

pytestmark = pytest.mark.browser

GOOD = [
    "chelsea_canon.jpg",
    "motorcycle_left.jpg",
    "motorcycle_left_crop.jpg",
    "coffee_iphone_rot6.jpg",
    "horse_rgba.png",
]
BROKEN = "bad_not_an_image.jpg"
DUPLICATE = "chelsea_again.jpg"  # chelsea_canon.jpg's bytes under another name


def no_console_errors(browser: Browser) -> None:
    errors = browser.console_errors()
    assert errors == [], errors


LOADED = "return [...document.querySelectorAll(arguments[0])].every(i => i.naturalWidth > 0)"


def wait_images_loaded(browser: Browser, css: str) -> None:
    browser.wait(lambda d: d.execute_script(LOADED, css))


def images_by_name(stack: LocalStackProcess) -> dict[str, dict]:
    page = stack.session.get(stack.url("/images?limit=100"), timeout=10).json()
    return {image["name"]: image for image in page["images"]}


def test_stage_path_without_slash_redirects_and_the_key_is_checked(
    browser: Browser, app_stack: LocalStackProcess
) -> None:
    browser.driver.get(app_stack.api_url)  # .../prod, no slash
    browser.wait(lambda d: d.current_url.split("#")[0].endswith("/prod/"))
    key = browser.find("#api-key")  # no key yet: the key page
    browser.screenshots("key")
    key.send_keys("not-the-key")
    browser.find("#save-key").click()
    status = browser.find("#key-status.error")
    browser.wait(lambda _: "refused" in status.text)
    # The one console error is the refused request itself.
    errors = browser.console_errors()
    assert errors and all("403" in e["message"] for e in errors), errors
    key.clear()
    key.send_keys(app_stack.api_key)
    browser.find("#save-key").click()
    browser.wait(lambda d: d.current_url.endswith("#/gallery"))
    browser.find("#gallery-status")
    no_console_errors(browser)


def test_upload_gallery_image_page_delete_stats_and_analyze(
    browser: Browser, app_stack: LocalStackProcess, photo_server: PhotoServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    browser.driver.execute_script(
        "localStorage.setItem('imgsvc.apiKey', arguments[0])", app_stack.api_key
    )
    files = [PHOTOS / name for name in [*GOOD, BROKEN]]
    shutil.copy(PHOTOS / "chelsea_canon.jpg", tmp_path / DUPLICATE)
    files.append(tmp_path / DUPLICATE)

    # ---------------------------------------------------------------- upload
    browser.open("upload")
    browser.find("#dropzone")
    browser.all("#file-input")[0].send_keys("\n".join(str(f) for f in files))
    rows = lambda: browser.all("#upload-list li")  # noqa: E731
    browser.wait(lambda _: len(rows()) == len(files))
    final = {"done", "duplicate", "rejected"}
    browser.wait(lambda _: all(r.get_attribute("data-state") in final for r in rows()), 60)
    states = {r.find_element("css selector", ".fname").text: r for r in rows()}
    # The two copies are ingested concurrently: whichever is done first is the image (with its
    # name), the other its duplicate.
    copies = [GOOD[0], DUPLICATE]
    first = next(n for n in copies if states[n].get_attribute("data-state") == "done")
    second = copies[1 - copies.index(first)]
    assert states[second].get_attribute("data-state") == "duplicate"
    stored = [first, *GOOD[1:]]
    for name in [*stored, second]:
        assert states[name].find_element("css selector", "progress").get_attribute("value") == "100"
    for name in stored:
        assert states[name].get_attribute("data-state") == "done", name
    broken = states[BROKEN]
    assert broken.get_attribute("data-state") == "rejected"
    assert broken.find_element("css selector", ".result").text.strip()  # the reason, in words
    wait_images_loaded(browser, "#upload-list img")
    browser.screenshots("upload")
    no_console_errors(browser)

    # ---------------------------------------------------------------- gallery
    browser.open("gallery")
    browser.wait(lambda _: len(browser.all("#gallery li")) == len(GOOD))
    names = [c.find_element("css selector", ".name").text for c in browser.all("#gallery li")]
    assert sorted(names) == sorted(stored)  # the duplicate is the same image
    wait_images_loaded(browser, "#gallery img")
    # the cards show the stored thumbnails, straight from S3 (one API call for the page)
    sources = [i.get_attribute("src") for i in browser.all("#gallery img")]
    assert all("/renditions/" in s and "/thumb.webp?" in s for s in sources), sources
    browser.screenshots("gallery")

    # ---------------------------------------------------------------- image page
    known = images_by_name(app_stack)
    moto = known["motorcycle_left.jpg"]
    card = next(
        c for c in browser.all("#gallery li") if c.get_attribute("data-id") == moto["image_id"]
    )
    card.find_element("css selector", "a.name").click()
    picture = browser.find("#picture")
    browser.wait(
        lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", picture
        )
    )
    assert browser.find("#image-title").text == "motorcycle_left.jpg"
    # the page shows a rendition sized for the screen, not the original
    assert f"images/{moto['image_id']}/rendition?width=" in picture.get_attribute("src")
    metadata = browser.find("#metadata").text
    assert moto["sha256"] in metadata and moto["phash"] in metadata

    # crop: drag from 1/4 to 3/4 of the picture as displayed
    width, height = picture.size["width"], picture.size["height"]
    ActionChains(browser.driver).move_to_element_with_offset(
        picture, -width // 4, -height // 4
    ).click_and_hold().move_by_offset(width // 2, height // 2).release().perform()
    box = {
        k: int(browser.find(f"#crop-{k}").get_attribute("value"))
        for k in ("left", "top", "right", "bottom")
    }
    scale = moto["display_width"] / width
    assert abs(box["left"] - moto["display_width"] / 4) <= 2 * scale + 1
    assert abs(box["right"] - 3 * moto["display_width"] / 4) <= 2 * scale + 1
    browser.find("#crop-button").click()
    link = browser.find("#crop-link")
    crops = [
        im for im in images_by_name(app_stack).values() if im["derived_from"] == moto["image_id"]
    ]
    assert len(crops) == 1
    assert crops[0]["width"] == box["right"] - box["left"]
    assert crops[0]["height"] == box["bottom"] - box["top"]
    assert link.get_attribute("href").endswith(f"#/image/{crops[0]['image_id']}")

    # compare with the other motorcycle: the page shows the API's distance and verdict
    other = known["motorcycle_left_crop.jpg"]
    select = Select(browser.find("#compare-with"))
    browser.wait(lambda _: len(select.options) > 1)
    select.select_by_value(other["image_id"])
    browser.find("#compare-button").click()
    verdict = browser.find("#compare-result .verdict")
    diff = app_stack.session.get(
        app_stack.url(f"/images/{moto['image_id']}/diff/{other['image_id']}"), timeout=10
    ).json()
    assert f"distance {diff['distance']} of 64" in verdict.text
    assert verdict.text.startswith("Similar" if diff["similar"] else "Different")

    # ASCII art at width 80
    browser.find("#ascii-button").click()
    art = browser.find("#ascii-art")
    browser.wait(lambda _: len(art.text.splitlines()) > 5)
    assert {len(line) for line in art.get_attribute("textContent").splitlines() if line} == {80}
    browser.find("#similar-list, #similar-h")
    browser.screenshots("image")
    no_console_errors(browser)

    # the original downloads under its name with the right type
    content = requests.get(app_stack.url(f"/images/{moto['image_id']}/content"), timeout=10)
    assert content.status_code == 200 and content.headers["Content-Type"] == "image/jpeg"
    assert content.headers["Content-Disposition"] == 'attachment; filename="motorcycle_left.jpg"'

    # ---------------------------------------------------------------- delete one
    browser.open("gallery")
    expected = len(GOOD) + 1  # the crop
    browser.wait(lambda _: len(browser.all("#gallery li")) == expected)
    horse = known["horse_rgba.png"]
    card = next(
        c for c in browser.all("#gallery li") if c.get_attribute("data-id") == horse["image_id"]
    )
    card.find_element("css selector", ".pick").click()
    browser.find("#delete-selected").click()
    browser.find("#confirm-delete-selected").click()
    browser.wait(lambda _: len(browser.all("#gallery li")) == expected - 1)
    assert "horse_rgba.png" not in images_by_name(app_stack)

    # ---------------------------------------------------------------- stats
    browser.open("stats")
    total = browser.find("#total-images")
    api = app_stack.session.get(app_stack.url("/stats"), timeout=10).json()
    assert total.text == str(expected - 1) == str(api["total_images"])
    bars = browser.all("#chart li")
    assert [
        (b.get_attribute("data-day"), int(b.get_attribute("data-count"))) for b in bars
    ] == list(api["uploads_per_day"].items())
    # five new images, the duplicate and the crop were uploaded, all today (UTC)
    assert sum(int(b.get_attribute("data-count")) for b in bars) == len(GOOD) + 2
    formats = {
        r.find_element("css selector", "th").text: int(r.find_element("css selector", "td").text)
        for r in browser.all("#formats tr")
    }
    assert formats == {"JPEG": 5}
    assert "UTC" in browser.find("main").text
    browser.screenshots("stats")

    # ---------------------------------------------------------------- analyze
    url = photo_server.url("brick.webp")
    browser.open("analyze")
    for expected_cache in ("miss", "hit"):
        field = browser.find("#analyze-url")
        field.clear()
        field.send_keys(url)
        browser.find("#analyze-button").click()
        browser.wait(lambda _, c=expected_cache: browser.find("#analyze-cache").text.startswith(c))
        assert browser.find("#analyze-format").text == "WEBP"
    browser.wait(lambda _: url in [b.text for b in browser.all("#history button")])
    browser.screenshots("analyze")
    no_console_errors(browser)

    # ---------------------------------------------------------------- delete all, confirmed
    browser.open("gallery")
    browser.wait(lambda _: len(browser.all("#gallery li")) == expected - 1)
    browser.find("#delete-all").click()
    browser.find("#confirm-delete-all").click()
    browser.wait(lambda _: browser.find("#gallery-status").text.startswith("No images yet"))
    assert images_by_name(app_stack) == {}
    no_console_errors(browser)


def test_a_batch_over_the_per_request_limit_is_split(
    browser: Browser, app_stack: LocalStackProcess, tmp_path: Path
) -> None:
    """51 files: the first 50 open the session, the 51st is added to it (POST .../files)."""
    from PIL import Image

    browser.driver.execute_script(
        "localStorage.setItem('imgsvc.apiKey', arguments[0])", app_stack.api_key
    )
    count = 51
    paths = []
    for i in range(count):  # distinct tiny pictures: each is a new image
        path = tmp_path / f"dot{i:02d}.png"
        Image.new("RGB", (8, 8), (i * 5, 255 - i * 5, (i * 37) % 256)).save(path)
        paths.append(path)
    browser.open("upload", fresh=True)
    browser.find("#dropzone")
    browser.all("#file-input")[0].send_keys("\n".join(str(p) for p in paths))
    rows = lambda: browser.all("#upload-list li[data-state]")  # noqa: E731
    browser.wait(
        lambda _: sum(r.get_attribute("data-state") == "done" for r in rows()) >= count, 120
    )
    assert browser.find("#upload-summary").text.endswith(f"{count} done")
    page = app_stack.session.get(app_stack.url("/images?limit=100"), timeout=10).json()
    assert sorted(i["name"] for i in page["images"]) == [p.name for p in paths]
    # One session: the 51st file was added to it.
    assert len(re.findall(r"POST /prod/uploads/[0-9a-f-]+/files -> 201", app_stack.log())) == 1
    no_console_errors(browser)
