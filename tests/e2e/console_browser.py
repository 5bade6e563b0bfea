"""Headless Chromium driven by Selenium for the console's tests: console errors, failed requests,
axe-core and screenshots, read from the real browser."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO, need

__all__ = ["Browser", "browser_session", "output_dir"]

_AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def output_dir() -> Path:
    """Where the run leaves its screenshots (``CONTENTFN_TEST_OUTPUT``, else ``build/test-output``)."""
    root = Path(os.environ.get("CONTENTFN_TEST_OUTPUT") or REPO / "build" / "test-output")
    path = root / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One Chrome session with helpers that state what a test checks."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def open(self, url: str) -> None:
        """A fresh load of ``url``: from a page of the same document a new hash alone would be
        handled in place, and the same URL not at all, so a test could read the previous page."""
        self.driver.get("about:blank")
        self.driver.get(url)

    def wait(self, condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
        end = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < end:
            try:
                last = condition()
            except Exception as exc:  # an element replaced while read: try again
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

    def settled(self, timeout: float = 30) -> None:
        """The page finished rendering: the shell cleared aria-busy and no fetch is pending."""
        self.wait(
            lambda: self.js("return !document.getElementById('main').hasAttribute('aria-busy')"),
            timeout,
            "the page to render",
        )

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, selector: str = "main") -> str:
        return str(self.js("const el = document.querySelector(arguments[0]); return el ? el.innerText : ''", selector))

    def problems(self) -> list[str]:
        """Console errors and failed requests since the last call (the logs are drained)."""
        found = [
            f"console: {entry['message']}" for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"
        ]
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.loadingFailed" and not params.get("canceled"):
                found.append(f"request failed: {params.get('errorText')} ({params.get('type')})")
            elif message["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
                found.append(f"request answered {params['response']['status']}: {params['response']['url']}")
        return found

    def axe_critical(self) -> list[str]:
        """axe-core's critical violations on the current page."""
        if not self.js("return typeof window.axe !== 'undefined'"):
            self.js(_AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map((n) => n.target.join(' '))}))), (e) => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));"
        )
        return [f"{v['id']}: {v['nodes']}" for v in result if v["impact"] == "critical"]

    def screenshot(self, name: str) -> Path:
        path = output_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@contextmanager
def browser_session() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    need(chromium is not None and chromedriver is not None, "chromium and chromium-driver are not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need(False, "selenium is not installed")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
    driver.set_script_timeout(60)
    try:
        yield Browser(driver)
    finally:
        driver.quit()
