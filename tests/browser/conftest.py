"""The browser tier: examples/web (the seed's front end on supabase-js) served from an
origin of its own, in Debian's headless Chromium driven by Playwright (no browser
download: Playwright is pointed at the system's `chromium`), against the real stack.

`scripts/test.sh` installs Chromium and the pinned supabase-js (tests/js) when missing.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from carbook_stack.manager import LocalStack
from tests.helpers import stack_db

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "examples" / "web"
#: The supabase-js bundle tests/js/package-lock.json pins (scripts/test.sh installs it).
BUNDLE = ROOT / "tests" / "js" / "node_modules" / "@supabase" / "supabase-js" / "dist" / "umd" / "supabase.js"
#: An image the stack seeds into its bucket, so a page can show a car made in SQL.
SEED_IMAGE = "seed/swift.png"
#: A real image (the seed's), which a browser can decode.
IMAGE = ROOT / "supabase" / "images" / "sample-car.png"


def chromium_path() -> str:
    """``CARBOOK_CHROMIUM``, else Debian's ``chromium`` on PATH."""
    found = os.environ.get("CARBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, (
        "Chromium is needed for tests/browser: scripts/test.sh installs it (apt-get install chromium)"
    )
    return found


class _Handler(SimpleHTTPRequestHandler):
    """examples/web as a dev server would serve it, with the pinned bundle as /supabase.js."""

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/supabase.js":
            return str(BUNDLE)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def web_origin() -> Iterator[str]:
    """The page's origin: another port than the API's, so every call is cross-origin."""
    assert BUNDLE.is_file(), (
        "supabase-js is not installed: run `npm ci --prefix tests/js` (scripts/test.sh does)"
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(WEB)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# Package scope, not session: Playwright's sync API runs an asyncio loop while it is open,
# and the tiers after this one call asyncio.run().
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Chromium's sandbox cannot run as root (CI runs as root); it guards nothing here.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    b = playwright.chromium.launch(executable_path=chromium_path(), args=args)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    """Browser contexts (each a separate profile: its own localStorage), closed at the end."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        ctx = browser.new_context(accept_downloads=True)
        ctx.set_default_timeout(15_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def app_url(origin: str, stack: LocalStack, key: str | None = None) -> str:
    s = stack.settings
    return f"{origin}/?{urlencode({'url': s.api_url, 'key': key or s.publishable_key})}"


def open_app(ctx: BrowserContext, origin: str, stack: LocalStack, key: str | None = None) -> Page:
    """The example app in a new tab of ``ctx``, once it has loaded its session and listing."""
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    page.goto(app_url(origin, stack, key))
    try:
        page.wait_for_selector("body[data-ready='true']")
    except PlaywrightTimeoutError:
        raise AssertionError(f"the page never became ready; it said: {problems or 'nothing'}") from None
    return page


def add_car(
    stack: LocalStack, model: str, *, make: str = "Browser", published: bool = True, price: int = 149900
) -> str:
    """A car made in SQL, as an admin outside carbook would, with a seeded image; its id."""
    with stack_db(stack) as conn:
        row = conn.execute(
            """insert into public.cars (make, model, year, image_path, is_published, price_in_paise)
               values (%s, %s, 2024, %s, %s, %s) returning id::text""",
            (make, model, SEED_IMAGE, published, price),
        ).fetchone()
    assert row is not None
    return str(row[0])
