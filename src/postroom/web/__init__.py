"""The browser app: the agents' workspace and the administrators' console, at ``/`` beside ``/api/v1``.

Server-rendered pages (Jinja2, ``templates/``) made live with htmx (vendored in ``static/vendor``), a
little plain JavaScript (``static/app.js``) where htmx cannot do it, and the same services the API
uses: views read a form, call a service, render a template. Security for every page: a session cookie
(``session.py``), a CSRF value on every unsafe request, a strict Content-Security-Policy (no inline
script or style), no framing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from postroom.web.deps import csrf_protected
from postroom.web.session import CsrfRefused, Forbidden, LoginRequired
from postroom.web.templating import STATIC_DIR, render
from postroom.web.views import ROUTERS

# No inline script or style anywhere, no plug-ins, no framing of our pages by others. Mail HTML is shown
# in a sandboxed frame served by a view of its own, with a policy of its own (see views/mail_frames).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/health")


def install(app: FastAPI) -> None:
    """Add the web app's routes, static files, security headers and error pages to ``app``."""
    protected = [Depends(csrf_protected)]
    for router in ROUTERS:
        app.include_router(router, dependencies=protected, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if not request.url.path.startswith(_API_PREFIXES):
            # A view that sets its own policy (the mail frame) keeps it.
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if request.url.path.startswith("/static/"):
                response.headers.setdefault("Cache-Control", "public, max-age=3600")
            else:
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, error: LoginRequired) -> Response:
        target = "/login" if error.next_path in ("", "/") else f"/login?next={quote(error.next_path, safe='/')}"
        if request.headers.get("hx-request"):
            # htmx follows this header with a full page load.
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, error: Forbidden) -> Response:
        user = getattr(request.state, "user", None)
        return render(
            request, "error.html", {"title": "Not allowed", "message": str(error)}, user=user, status_code=403
        )

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, error: CsrfRefused) -> Response:
        return HTMLResponse(f"<p>{_escape(str(error))}</p>", status_code=403)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
