"""Dependencies of the web views: the service, the signed-in user (or a way to /login), CSRF."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from postroom.service import Service
from postroom.web.session import Forbidden, LoginRequired, WebUser, check_csrf, current_user


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def signed_in(request: Request) -> WebUser:
    user = current_user(request, get_service(request))
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    request.state.user = user
    return user


def admin_only(user: Annotated[WebUser, Depends(signed_in)]) -> WebUser:
    if not user.is_admin:
        raise Forbidden("Settings are for administrators: ask an admin of this Postroom to change them.")
    return user


async def csrf_protected(request: Request) -> None:
    """Every unsafe request of the web app carries the page's CSRF value (see ``web.session``)."""
    form = None
    if request.method != "GET" and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        # Starlette keeps the parsed form on the request: the view reads the same one.
        form = await request.form()
    check_csrf(request, form, get_service(request).settings.public_url)


ServiceDep = Annotated[Service, Depends(get_service)]
UserDep = Annotated[WebUser, Depends(signed_in)]
AdminUserDep = Annotated[WebUser, Depends(admin_only)]
