"""Browser-test harness: headless Debian Chromium driven by Playwright against `live_server`.

Fixtures: `browser` (one Chromium per session), `page` (a fresh 1366×768 context per test
that fails the test on any JavaScript error or broken subresource), `shot(name)` (saves
`test-artifacts/screenshots/<name>.png`, git-ignored) and `sign_in(page, email)`.
Tests in this folder are marked `browser` and skip with a message when Chromium is missing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test, even if its author forgot the mark."""
    browser_dir = Path(__file__).parent
    for item in items:
        if browser_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev dependency group installs it
        pytest.skip("the playwright package is not installed; browser tests skipped")
    # While Playwright's sync API is open, an asyncio loop counts as running in this thread
    # (for every later test of the process too), and Django refuses ORM calls from such a
    # thread unless told it is deliberate. Set once a browser test runs; undone at the end.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, transactional_db) -> Iterator:
    """A fresh browser context (no cookies) at 1366×768, its base URL the live server."""
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url, device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []

    def on_console(msg) -> None:
        # A 4xx page the test opens on purpose is logged as "Failed to load resource";
        # broken subresources are caught by on_response instead, with their URL.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(f"console.error: {msg.text}")

    def on_response(response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            errors.append(f"{response.status} for {response.request.resource_type} {response.url}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    page.on("response", on_response)
    yield page
    context.close()
    _wait_for_quiet_database()
    assert errors == [], "the page had JavaScript errors or broken resources"


def _wait_for_quiet_database(timeout: float = 10.0) -> None:
    """Wait until no other session of this test database is running a statement or holding
    a transaction open. The live server answers requests on its own threads, and one the
    page started just before it closed (an htmx poll, say) may still be running when the
    test's clean-up TRUNCATEs every table: the two lock tables in different orders and
    Postgres ends one of them as a deadlock. Two quiet looks 50 ms apart, at most `timeout`."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
            )
            busy = cursor.fetchone()[0]
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(0.05)


@pytest.fixture
def shot(page) -> Callable[..., Path]:
    """`shot("02-queue")` saves the viewport as a PNG; `full_page=True` for the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(name: str, *, full_page: bool = False) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
        path = SCREENSHOTS / f"{safe}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save


@pytest.fixture
def sign_in() -> Callable:
    """Sign in through the real form, as a person would."""

    def do(page, email: str, password: str = PASSWORD) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        # Not "networkidle": the queue polls for live updates.
        page.wait_for_load_state("load")

    return do
