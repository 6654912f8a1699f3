"""The web app splits a batch by the limits GET /status publishes: a stack whose sessions hold
12 files, and 13 files chosen at once, make two sessions and 13 images."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import Browser
from tests.browser.test_webapp import no_console_errors
from tests.e2e.conftest import LocalStackProcess, start_stack

pytestmark = pytest.mark.browser

SESSION = 12


@pytest.fixture(scope="module")
def app_stack(
    browser_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStackProcess]:
    """This module's own stack, with a small per-session limit (the per-request one stays 50)."""
    running = start_stack(
        tmp_path_factory.mktemp("limits-stack"),
        args=["--stage-prefix"],
        env={"MAX_FILES_PER_SESSION": str(SESSION)},
    )
    yield running
    running.stop()


def test_a_batch_over_the_session_limit_opens_a_second_session(
    browser: Browser, app_stack: LocalStackProcess, tmp_path: Path
) -> None:
    from PIL import Image

    limits = app_stack.session.get(app_stack.url("/status"), timeout=10).json()["limits"]
    assert (limits["max_files_per_session"], limits["max_files_per_request"]) == (SESSION, 50)
    count = SESSION + 1
    paths = []
    for i in range(count):  # distinct tiny pictures: each is a new image
        path = tmp_path / f"px{i:02d}.png"
        Image.new("RGB", (8, 8), (i * 19, 200 - i * 7, (i * 53) % 256)).save(path)
        paths.append(path)
    browser.open("key")  # the app's origin, for its storage
    browser.driver.execute_script(
        "localStorage.setItem('imgsvc.apiKey', arguments[0])", app_stack.api_key
    )
    browser.open("upload", fresh=True)
    browser.find("#dropzone")
    browser.all("#file-input")[0].send_keys("\n".join(str(p) for p in paths))
    rows = lambda: browser.all("#upload-list li[data-state]")  # noqa: E731
    browser.wait(lambda _: len(rows()) == count)
    browser.wait(lambda _: all(r.get_attribute("data-state") == "done" for r in rows()), 120)
    assert browser.find("#upload-summary").text == f"{count} files: {count} done"
    page = app_stack.session.get(app_stack.url("/images?limit=100"), timeout=10).json()
    assert sorted(i["name"] for i in page["images"]) == [p.name for p in paths]
    # 12 files opened the first session; the 13th could not join it and opened a second.
    log = app_stack.log()
    assert len(re.findall(r"POST /prod/uploads -> 201", log)) == 2, log[-3000:]
    assert not re.findall(r"POST /prod/uploads/\S+/files", log)
    assert not re.findall(r"POST /prod/uploads\S* -> 409", log)
    no_console_errors(browser)
