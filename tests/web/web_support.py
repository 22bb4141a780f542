"""Helpers of the browser tests, imported by test modules and by conftest.py: the test server, signing in."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from playwright.sync_api import Page

from postroom.cli import http_config
from postroom.service import Service

PASSWORD = "correct horse battery"


def find_chromium() -> str | None:
    configured = os.environ.get("POSTROOM_TEST_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class LiveServer:
    """Postroom's HTTP app served by uvicorn in a thread of the test process."""

    service: Service
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        # Without waiting for open responses: a page's event stream (GET /events) never finishes by itself.
        self.server.force_exit = True
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(service: Service) -> LiveServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The configuration `postroom serve` uses (proxy headers included); the socket is bound here.
    config = http_config(service, "127.0.0.1", port)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="live-http")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.02)
    return LiveServer(service, f"http://127.0.0.1:{port}", server, thread)


def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
