"""The web app without the file picker or the mouse: files dropped onto the upload zone, and
the whole path from the API key to deleting an image by keyboard alone (focus always visible,
the crop rectangle placed with the arrow keys, the confirmation dialog keeping focus)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Browser
from tests.browser.test_webapp import BROKEN, DUPLICATE, images_by_name, no_console_errors
from tests.e2e.conftest import PHOTOS, LocalStackProcess

pytestmark = pytest.mark.browser

DROPPED = ["chelsea_canon.jpg", "horse_rgba.png"]

# Selenium cannot drag files from the OS: give them to a plain file input, then drop its
# FileList onto the zone in the events a real drag fires. dispatchEvent answers false when a
# listener cancelled the event, which is what makes an element a drop target.
DROP = """
const [zone, source] = arguments;
const data = new DataTransfer();
for (const file of source.files) data.items.add(file);
const fire = (type) => !zone.dispatchEvent(
  new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data }));
const entered = fire("dragenter");
const over = fire("dragover");
const highlighted = zone.classList.contains("over");
const dropped = fire("drop");
return { entered, over, highlighted, dropped, after: zone.classList.contains("over"),
         count: data.files.length };
"""

SOURCE = """
const input = document.createElement("input");
input.type = "file";
input.multiple = true;
input.id = "drag-source";
input.className = "visually-hidden";
document.body.append(input);
"""

FOCUS = """
const el = document.activeElement;
const style = getComputedStyle(el);
return {
  tag: el.tagName, id: el.id, cls: el.className, text: (el.textContent || "").slice(0, 40),
  ring: (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== "none",
};
"""


def test_files_dropped_on_the_zone_upload_like_chosen_ones(
    browser: Browser, app_stack: LocalStackProcess, tmp_path: Path
) -> None:
    browser.open("key")  # the app's origin, for its storage
    browser.driver.execute_script(
        "localStorage.setItem('imgsvc.apiKey', arguments[0])", app_stack.api_key
    )
    shutil.copy(PHOTOS / DROPPED[0], tmp_path / DUPLICATE)
    files = [PHOTOS / n for n in [*DROPPED, BROKEN]] + [tmp_path / DUPLICATE]
    browser.open("upload", fresh=True)
    zone = browser.find("#dropzone")
    browser.driver.execute_script(SOURCE)
    source = browser.all("#drag-source")[0]
    source.send_keys("\n".join(str(f) for f in files))
    result = browser.driver.execute_script(DROP, zone, source)
    assert result == {
        "entered": True,
        "over": True,
        "highlighted": True,
        "dropped": True,
        "after": False,
        "count": len(files),
    }

    rows = lambda: browser.all("#upload-list li")  # noqa: E731
    browser.wait(lambda _: len(rows()) == len(files))
    final = {"done", "duplicate", "rejected"}
    browser.wait(lambda _: all(r.get_attribute("data-state") in final for r in rows()), 60)
    states = {
        r.find_element("css selector", ".fname").text: r.get_attribute("data-state") for r in rows()
    }
    # the duplicate is processed after the first copy, or the first copy after it
    assert sorted(states.values()) == ["done", "done", "duplicate", "rejected"], states
    assert states[DROPPED[1]] == "done" and states[BROKEN] == "rejected"
    assert {states[DROPPED[0]], states[DUPLICATE]} == {"done", "duplicate"}
    names = set(images_by_name(app_stack))  # the image has the name of the copy done first
    assert DROPPED[1] in names and len(names & {DROPPED[0], DUPLICATE}) == 1, names
    no_console_errors(browser)


class Keyboard:
    """Keys to the focused element, as a person presses them; every focus stop is checked."""

    def __init__(self, browser: Browser) -> None:
        from selenium.webdriver.common.keys import Keys

        self.browser = browser
        self.keys = Keys
        self.stops: list[dict[str, Any]] = []

    def press(self, *keys: str, shift: bool = False) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        chain = ActionChains(self.browser.driver)
        if shift:
            chain.key_down(self.keys.SHIFT)
        chain.send_keys(*keys)
        if shift:
            chain.key_up(self.keys.SHIFT)
        chain.perform()

    def focused(self) -> dict[str, Any]:
        return self.browser.driver.execute_script(FOCUS)

    def on(self, css: str) -> bool:
        return self.browser.driver.execute_script(
            "return document.activeElement.matches(arguments[0])", css
        )

    def tab_to(self, css: str, *, back: bool = False, limit: int = 80) -> None:
        """Tab (or Shift+Tab) until the focus is on css; each stop must show its focus."""
        for _ in range(limit):
            self.press(self.keys.TAB, shift=back)
            stop = self.focused()
            self.stops.append(stop)
            assert stop["ring"], f"no visible focus on {stop}"
            if self.on(css):
                return
        raise AssertionError(f"{css} not reached in {limit} presses: {self.stops[-limit:]}")


def put_image(stack: LocalStackProcess, name: str) -> dict[str, Any]:
    photo = PHOTOS / name
    answer = stack.session.post(
        stack.url("/images"), files={"image": (name, photo.read_bytes())}, timeout=30
    )
    assert answer.status_code in (200, 201), answer.text
    image_id = answer.json()["image_id"]
    return stack.session.get(stack.url(f"/images/{image_id}"), timeout=10).json()


def image_ids(stack: LocalStackProcess) -> set[str]:
    page = stack.session.get(stack.url("/images?limit=100"), timeout=10).json()
    return {image["image_id"] for image in page["images"]}


def test_key_gallery_image_crop_compare_ascii_and_delete_by_keyboard_only(
    browser: Browser, app_stack: LocalStackProcess
) -> None:
    moto = put_image(app_stack, "motorcycle_left.jpg")
    put_image(app_stack, "motorcycle_left_crop.jpg")
    kb = Keyboard(browser)
    keys = kb.keys
    browser.open("key", fresh=True)
    browser.driver.execute_script("localStorage.clear()")

    # ---------------------------------------------------------------- the key, then the gallery
    browser.open(fresh=True)
    browser.find("#api-key")
    browser.wait(lambda _: kb.on("#api-key"))  # the key page puts the caret in the field
    kb.press(app_stack.api_key, keys.ENTER)
    browser.wait(lambda d: d.current_url.endswith("#/gallery"))
    card = f'#gallery li[data-id="{moto["image_id"]}"]'
    browser.find(card)
    browser.wait(lambda _: kb.on("main"))  # the new page has the focus, not the removed form
    kb.tab_to("a.skip", back=True)  # back past the menu to the skip link, which stays put
    kb.press(keys.ENTER)
    browser.wait(lambda _: kb.on("main"))
    assert browser.driver.current_url.endswith("#/gallery")
    kb.tab_to(f"{card} a.name")
    kb.press(keys.ENTER)

    # ---------------------------------------------------------------- crop with the arrow keys
    picture = browser.find("#picture")
    browser.wait(lambda d: d.execute_script("return arguments[0].naturalWidth > 0", picture))
    browser.wait(lambda _: kb.on("main"))
    kb.tab_to("#crop-frame")
    w, ht = moto["display_width"], moto["display_height"]
    kb.press(keys.ARROW_RIGHT)  # the first arrow places half the picture in the middle
    box = {"left": round(w / 4), "top": round(ht / 4), "right": round(3 * w / 4)}
    box["bottom"] = round(3 * ht / 4)
    step_x, step_y = max(1, round(w / 50)), max(1, round(ht / 50))
    kb.press(keys.ARROW_RIGHT, keys.ARROW_DOWN)  # moves it
    box = {
        "left": box["left"] + step_x,
        "top": box["top"] + step_y,
        "right": box["right"] + step_x,
        "bottom": box["bottom"] + step_y,
    }
    kb.press(keys.ARROW_LEFT, keys.ARROW_LEFT, keys.ARROW_UP, shift=True)  # resizes it
    box["right"] -= 2 * step_x
    box["bottom"] -= step_y
    typed = lambda: {  # noqa: E731
        k: int(browser.find(f"#crop-{k}").get_attribute("value") or -1) for k in box
    }
    browser.wait(lambda _: typed() == box)
    assert browser.find(".crop-rect").is_displayed()
    kb.press(keys.ENTER)  # Enter on the picture crops
    link = browser.find("#crop-link")
    page = app_stack.session.get(app_stack.url("/images?limit=100"), timeout=10).json()
    crops = [im for im in page["images"] if im["derived_from"] == moto["image_id"]]
    assert [(c["width"], c["height"]) for c in crops] == [
        (box["right"] - box["left"], box["bottom"] - box["top"])
    ]
    assert link.get_attribute("href").endswith(f"#/image/{crops[0]['image_id']}")

    # ---------------------------------------------------------------- compare
    browser.wait(lambda d: len(d.find_elements("css selector", "#compare-with option")) > 1)
    kb.tab_to("#compare-with")
    kb.press(keys.ARROW_DOWN)  # the first other image
    chosen = browser.find("#compare-with").get_attribute("value")
    assert chosen and chosen != moto["image_id"]
    kb.tab_to("#compare-button")
    kb.press(keys.ENTER)
    verdict = browser.find("#compare-result .verdict")
    diff = app_stack.session.get(
        app_stack.url(f"/images/{moto['image_id']}/diff/{chosen}"), timeout=10
    ).json()
    assert f"distance {diff['distance']} of 64" in verdict.text

    # ---------------------------------------------------------------- ASCII art and its width
    kb.tab_to("#ascii-button")
    kb.press(keys.SPACE)
    art = browser.find("#ascii-art")
    widths = lambda: {  # noqa: E731
        len(line) for line in art.get_attribute("textContent").splitlines() if line
    }
    browser.wait(lambda _: widths() == {80})
    kb.tab_to("#ascii-width", back=True)
    kb.press(keys.ARROW_RIGHT, keys.ARROW_RIGHT)
    browser.wait(lambda _: widths() == {100})
    assert browser.find("#ascii-width").get_attribute("value") == "100"

    # ---------------------------------------------------------------- delete, confirmed
    kb.tab_to("#delete-image", back=True)
    kb.press(keys.ENTER)
    browser.find("dialog.confirm")
    in_dialog = "dialog[open] :focus"
    assert kb.on(f"{in_dialog}:not(.danger)")  # Cancel, the harmless choice, first
    for back in (False, False, True):  # Tab and Shift+Tab stay inside the dialog
        kb.press(keys.TAB, shift=back)
        assert kb.on(in_dialog) and kb.focused()["ring"], kb.focused()
    kb.press(keys.ESCAPE)
    browser.wait(lambda d: not d.find_elements("css selector", "dialog"))
    assert kb.on("#delete-image")  # focus back where it was
    assert moto["image_id"] in image_ids(app_stack)
    kb.press(keys.ENTER)
    browser.find("dialog.confirm")
    browser.screenshots("confirm")
    kb.tab_to("#confirm-delete-image")
    kb.press(keys.ENTER)
    browser.wait(lambda d: d.current_url.endswith("#/gallery"))
    browser.wait(lambda _: moto["image_id"] not in image_ids(app_stack))
    browser.find("#gallery-status")
    no_console_errors(browser)
    # the path went through links, buttons, fields, the slider and the picture itself
    tags = {s["tag"] for s in kb.stops}
    assert {"A", "BUTTON", "INPUT", "SELECT", "DIV"} <= tags, tags
