"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for page tests.

Playwright's own browser download is never used: it launches the system's Chromium
(`executable_path`), with the flags a sandboxed machine needs and a fresh profile folder. Every
request a page makes is seen: `file:` and `data:` ones go through, anything else is aborted and
recorded, so a test can assert that a page fetches nothing from the network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # containers give /dev/shm tens of MB; Chromium then crashes drawing large pages
    "--disable-dev-shm-usage",
]
_LOCAL_SCHEMES = ("file:", "data:", "about:")


def chromium_path() -> str | None:
    """The system Chromium, or None where it is not installed."""
    for candidate in (os.environ.get("CLAIMDIFF_CHROMIUM"), shutil.which("chromium"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@dataclass
class Visit:
    """What happened while a page loaded."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.remote_requests,
                *self.failed_requests]


class Browser:
    def __init__(self, context: Any) -> None:
        self._context = context
        self._remote: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(_LOCAL_SCHEMES):
            route.continue_()
        else:
            self._remote.append(url)
            route.abort()

    def visit(self, url: str, *, screenshot: Path | None = None,
              width: int = 1280, height: int = 900) -> tuple[Any, Visit]:
        """Open a page, wait for it to load, and return it with what went wrong on the way."""
        visit = Visit()
        start = len(self._remote)
        page = self._context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.on("console", lambda message: visit.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
        page.on("requestfailed", lambda request: visit.failed_requests.append(
            f"{request.url}: {request.failure}")
            if request.url.startswith(_LOCAL_SCHEMES) else None)
        page.goto(url, wait_until="load")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        visit.remote_requests.extend(self._remote[start:])
        return page, visit


@contextmanager
def headless_chromium(executable: str) -> Iterator[Browser]:
    """A Chromium started headless with a fresh profile; every non-local request is refused."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="claimdiff-chromium-") as profile, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            chromium_sandbox=False)
        try:
            yield Browser(context)
        finally:
            context.close()
