"""Browser fixtures: Debian's headless Chromium driven by Selenium through Debian's
chromedriver, against the local stack served under its stage prefix (/prod/).

Without Chromium the tests skip with a loud message (on CI, CI=true, they fail instead).
Screenshots of every page at desktop and phone sizes go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LocalStackProcess, start_stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "artifacts") / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
DESKTOP = (1280, 900)
PHONE = (390, 844)
_skipped: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_skipped[0], red=True, bold=True)


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and not shutil.which(path):
            return f"{path} not found (Debian package {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    missing = _missing()
    if missing is None:
        return
    message = f"Browser tests need Chromium and ChromeDriver: {missing}. Install: {INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    _skipped.append(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def app_stack(
    browser_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStackProcess]:
    """A local stack of its own (the tests count images), under /prod as in AWS."""
    running = start_stack(tmp_path_factory.mktemp("browser-stack"), args=["--stage-prefix"])
    assert running.api_url.endswith("/prod")
    yield running
    running.stop()


class Browser:
    """A Chromium session: pages, waits, console errors, screenshots."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base = base_url.rstrip("/") + "/"

    def open(self, route: str = "", *, fresh: bool = False) -> None:
        """Go to a route; fresh: load the page anew (a new hash alone does not reload it)."""
        if fresh:
            self.driver.get("about:blank")
        self.driver.get(self.base + (f"#/{route}" if route else ""))

    def wait(self, condition: Any, timeout: float = 30) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)

    def find(self, css: str, timeout: float = 30) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def console_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def screenshots(self, name: str) -> None:
        """Full-page PNGs at desktop and phone widths."""
        import base64

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            self.driver.set_window_size(width, height)
            self.driver.execute_script("return new Promise(r => requestAnimationFrame(r))")
            metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = metrics["cssContentSize"]
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": max(width, size["width"]),
                        "height": min(max(height, size["height"]), 5000),
                        "scale": 1,
                    },
                },
            )
            (ARTIFACTS / f"{name}-{label}.png").write_bytes(base64.b64decode(shot["data"]))
        self.driver.set_window_size(*DESKTOP)


@pytest.fixture(scope="module")
def browser(
    app_stack: LocalStackProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    # Selenium Manager is skipped when the Service names the driver; SE_OFFLINE keeps it from
    # downloading anything should it ever run.
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(
        executable_path=CHROMEDRIVER, log_output=str(ARTIFACTS.parent / "chromedriver.log")
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield Browser(driver, app_stack.api_url)
    finally:
        driver.quit()
