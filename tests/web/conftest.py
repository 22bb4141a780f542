"""Fixtures of the browser tests: Postroom served over HTTP on loopback, and a real headless Chromium.

Chromium is Debian's ``chromium`` package, launched by executable path through Playwright (no browser
download: ``make test`` installs the package like Dovecot). One browser per pytest-xdist worker; one
fresh context (cookies, storage) per test. ``shot(page, name)`` saves a screenshot under
``tests/web/screenshots/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web_support import PASSWORD, LiveServer, find_chromium, serve, sign_in

from postroom.service import Service
from postroom.store.models import Role

playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Assertions wait for the page up to this long (Playwright's default is 5 s; a loaded machine needs more).
playwright_api.expect.set_options(timeout=15_000)


@pytest.fixture
def live(service: Service) -> Iterator[LiveServer]:
    """The app of a fresh service (SQLite, workers started) at ``live.url``."""
    server = serve(service)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium is missing: CI must run the browser tests (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium): browser tests skipped")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: playwright_api.Browser, request: pytest.FixtureRequest) -> Iterator[playwright_api.Page]:
    if "live" in request.fixturenames:
        # The server first, so that it stops after the browser closed: pages poll, and a request cut off by a
        # stopped server is not an error of the page under test.
        request.getfixturevalue("live")
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    # Generous: a loaded CI machine may take seconds for a step; a passing step returns at once anyway.
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []

    # A page that breaks its own CSP or throws is a defect: collected and checked after the test.
    def console(message: playwright_api.ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} (at {message.location.get('url')})")

    opened.on("console", console)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    unexpected = [e for e in errors if not _expected_console_error(e)]
    assert not unexpected, f"the browser reported errors: {unexpected}"


def _expected_console_error(text: str) -> bool:
    # Failed loads the test provokes on purpose (a 4xx page, blocked remote content) are not the app's errors.
    return "Failed to load resource" in text or "net::ERR_BLOCKED" in text


@pytest.fixture
def shot() -> Callable[[playwright_api.Page, str], Path]:
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page: playwright_api.Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def make_user(service: Service) -> Callable[..., int]:
    """Create a user with :data:`PASSWORD` and return its id."""

    def make(email: str, name: str = "", role: Role = Role.AGENT) -> int:
        with service.db.write() as session:
            user = service.users.create(session, email, name=name or email.split("@")[0], role=role, password=PASSWORD)
            return user.id

    return make


@pytest.fixture
def admin_page(page: playwright_api.Page, live: LiveServer, make_user: Callable[..., int]) -> playwright_api.Page:
    """A browser signed in as an administrator (``admin@example.test``) on ``live``."""
    make_user("admin@example.test", "Ada Admin", Role.ADMIN)
    sign_in(page, live.url, "admin@example.test")
    return page


@pytest.fixture
def agent_page(page: playwright_api.Page, live: LiveServer, make_user: Callable[..., int]) -> playwright_api.Page:
    """A browser signed in as an agent (``agent@example.test``) on ``live``."""
    make_user("agent@example.test", "Alan Agent", Role.AGENT)
    sign_in(page, live.url, "agent@example.test")
    return page
