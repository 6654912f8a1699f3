"""The web app's function and files: CSP, cache headers, stage redirect, size, safe rendering;
download names of originals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imgsvc import storage, webapp
from tests.conftest import ROOT, load_handler

STATIC = ROOT / "functions" / "webapp" / "static"


@pytest.fixture
def app(aws):
    return load_handler("webapp")


def test_version_changes_with_any_file(tmp_path: Path) -> None:
    for name in ("index.html", "app.js"):
        (tmp_path / name).write_text(name)
    before = webapp.Assets(tmp_path).version
    (tmp_path / "app.js").write_text("changed")
    assert webapp.Assets(tmp_path).version != before


def test_the_app_is_small_and_renders_text_never_html() -> None:
    files = [p for p in STATIC.iterdir() if p.suffix in (".html", ".js", ".css")]
    assert sum(p.stat().st_size for p in files) < 200 * 1024
    for path in files:
        text = path.read_text()
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert unsafe not in text, f"{path.name} uses {unsafe}"
        # No absolute or foreign URL: the app lives under the stage path, offline.
        assert not re.search(r"""["'`(]\s*/(?!/)[a-z]""", text), path.name
        assert not re.search(r"https?://(?!example\.com)", text), path.name
        if path.suffix == ".js":  # relative ES module imports only
            assert all(i.startswith("./") for i in re.findall(r'from "([^"]+)"', text))


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("cat.jpg", "JPEG", "cat.jpg"),
        ("cat.jpeg", "PNG", "cat.png"),  # the detected format decides the extension
        ("Chelsea", "JPEG", "Chelsea.jpg"),
        ("my.holiday.photo", "WEBP", "my.holiday.webp"),
        ("scan.tiff", "TIFF", "scan.tif"),
        (None, "GIF", "0123456789abcdef.gif"),
        ('a"b\\c.png', "PNG", "abc.png"),
    ],
)
def test_download_filename(name: str | None, fmt: str, expected: str) -> None:
    assert storage.download_filename(name, "0123456789abcdef" * 4, fmt) == expected


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert storage.content_disposition("attachment", "cat.jpg") == 'attachment; filename="cat.jpg"'
    assert storage.content_disposition("attachment", "café.jpg") == (
        "attachment; filename=\"caf_.jpg\"; filename*=UTF-8''caf%C3%A9.jpg"
    )
