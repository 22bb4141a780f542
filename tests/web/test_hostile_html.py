"""A hostile HTML mail runs nothing and loads nothing in the agent's browser, and after "Load images" it loads
images only. Proved with a recording HTTP server on loopback whose address the mail uses everywhere: no
request reaches it before the agent asks, and afterwards only the pictures do."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conversation_support import PNG, html_mail, make_desk, open_conversation
from playwright.sync_api import Page, Request, expect
from web_support import LiveServer

from postroom.testing.smtp import SmtpTestServer


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.paths)


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def hostile_html(origin: str) -> str:
    call = f"fetch('{origin}/ran-{{}}')"
    return f"""<html><head>
<script>{call.format("head-script")}</script>
<link rel="stylesheet" href="{origin}/link-stylesheet.css">
<meta http-equiv="refresh" content="0;url={origin}/meta-refresh">
<style>body {{ background: url({origin}/style-element.png) }}</style>
</head>
<body onload="{call.format("onload")}">
<p>Hello <b>agent</b>, please read this.</p>
<script>window.parent.document.title = 'pwned'; {call.format("body-script")}</script>
<img src="{origin}/pixel.png" alt="tracking pixel" width="1" height="1">
<img src="x" onerror="{call.format("onerror")}">
<a href="javascript:{call.format("javascript-link")}">click me</a>
<div style="background-image: url({origin}/inline-style.png)">styled text</div>
<div style="background: u\\72l({origin}/escaped-style.png)">escaped style</div>
<iframe src="{origin}/iframe"></iframe>
<object data="{origin}/object"></object>
<embed src="{origin}/embed">
<svg><image href="{origin}/svg-image.png"/><script>{call.format("svg-script")}</script></svg>
<video poster="{origin}/video-poster.png" src="{origin}/video"></video>
<form action="{origin}/form"><input name="q"><button>Go</button></form>
<img srcset="{origin}/srcset.png 1x" alt="srcset">
<base href="{origin}/base/">
<img src="relative.png" alt="relative">
</body></html>"""


def test_a_hostile_mail_runs_nothing_and_loads_nothing_until_images_are_asked_for(
    agent_page: Page,
    live: LiveServer,
    make_smtp_server: Callable[..., SmtpTestServer],
    recorder: Recorder,
    shot: Callable[[Page, str], object],
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(html_mail(hostile_html(recorder.origin), subject="Your invoice"))
    requested: list[str] = []

    def note(request: Request) -> None:
        requested.append(request.url)

    agent_page.on("request", note)
    open_conversation(agent_page, live.url, conversation_id)
    frame = agent_page.frame_locator("iframe.msg-frame")
    expect(frame.get_by_text("please read this")).to_be_visible()
    expect(frame.get_by_text("click me")).to_be_visible()
    # Whatever could have run or loaded has had its chance (the server answers in microseconds).
    time.sleep(1.0)
    frame.get_by_text("click me").click()
    time.sleep(0.3)

    assert recorder.seen() == []
    assert [url for url in requested if url.startswith(recorder.origin)] == []
    # No script ran, in the frame or against the page around it.
    assert agent_page.title() == "Your invoice · Postroom"
    assert frame.locator("script, iframe, object, embed, form, link, body meta, body style, svg, video").count() == 0
    assert frame.locator("a").first.get_attribute("href") is None
    expect(agent_page.get_by_text("1 remote image held back")).to_be_visible()
    shot(agent_page, "conversation-hostile-before-images")

    agent_page.get_by_role("button", name="Load images").click()
    expect(agent_page.get_by_text("Remote images loaded.")).to_be_visible()
    pixel = frame.get_by_role("img", name="tracking pixel")
    deadline = time.monotonic() + 5
    while "/pixel.png" not in recorder.seen() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    expect(pixel).to_be_visible()
    # Pictures only: never a script, a style sheet, a frame, a form, a relative URL under a planted base.
    seen = recorder.seen()
    assert "/pixel.png" in seen
    assert set(seen) <= {"/pixel.png", "/srcset.png"}, seen
    fetched = [url for url in requested if url.startswith(recorder.origin)]
    assert {url.removeprefix(recorder.origin) for url in fetched} <= {"/pixel.png", "/srcset.png"}
    assert agent_page.title() == "Your invoice · Postroom"


def test_the_frame_document_forbids_scripts_even_if_markup_slipped_through(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    """Defence in depth: the frame's own policy and sandbox, checked on the headers the browser gets."""
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(html_mail("<p>Hi</p>"))
    open_conversation(agent_page, live.url, conversation_id)
    iframe = agent_page.locator("iframe.msg-frame")
    sandbox = iframe.get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    src = iframe.get_attribute("src")
    for images in ("", "?images=true"):
        response = agent_page.request.get(f"{live.url}{src}{images}")
        policy = response.headers["content-security-policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy
        assert ("https: http:" in policy) == bool(images)
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert response.headers["referrer-policy"] == "no-referrer"
