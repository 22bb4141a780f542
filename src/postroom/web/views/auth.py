"""Signing in and out, and accepting an invitation (the page its link opens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from postroom.errors import AccessError, Conflict, InvalidSetting, SignInThrottled
from postroom.web.deps import ServiceDep, UserDep
from postroom.web.session import current_user, end_session, start_session
from postroom.web.templating import render

router = APIRouter()


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (``//evil.test`` is another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
def login_page(request: Request, service: ServiceDep, next: str | None = None) -> Response:
    if current_user(request, service) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None})


@router.post("/login")
def login(
    request: Request,
    service: ServiceDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    client_ip = request.client.host if request.client else "unknown"
    try:
        if not email.strip() or not password:
            raise InvalidSetting("email", "enter your email address and password")
        signed_in = service.users.authenticate(service.db, email, password, client_ip)
    except SignInThrottled as error:
        minutes = max(1, (error.retry_after + 59) // 60)
        message = f"Too many failed attempts: try again in {minutes} minute{'s' if minutes > 1 else ''}."
        return _login_again(request, email, next, message, 429)
    except InvalidSetting:
        return _login_again(request, email, next, "Enter your email address and password.", 401)
    except AccessError as error:
        message = str(error)
        return _login_again(request, email, next, message[:1].upper() + message[1:] + ".", 401)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(request, response, service, signed_in.user_id)
    return response


def _login_again(request: Request, email: str, next_path: str, error: str, status_code: int) -> Response:
    context = {"next": safe_next(next_path), "email": email, "error": error}
    return render(request, "login.html", context, status_code=status_code)


@router.post("/logout")
def logout(request: Request, service: ServiceDep, user: UserDep) -> Response:
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response, service, user)
    return response


@router.get("/accept-invitation")
def invitation_page(request: Request, service: ServiceDep, token: str = "") -> Response:
    try:
        with service.db.read() as session:
            invitation = service.invitations().find(session, token)
            context = {"token": token, "email": invitation.email, "name": invitation.name or "", "error": None}
    except AccessError as error:
        return render(request, "invitation_invalid.html", {"message": str(error)}, status_code=error.status_code)
    return render(request, "accept_invitation.html", context)


@router.post("/accept-invitation")
def accept_invitation(
    request: Request,
    service: ServiceDep,
    token: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    invitations = service.invitations()
    try:
        with service.db.read() as session:
            email = invitations.find(session, token).email
    except AccessError as error:
        return render(request, "invitation_invalid.html", {"message": str(error)}, status_code=error.status_code)
    problem = None
    if not name.strip():
        problem = "Enter your name."
    elif password != password_again:
        problem = "The two passwords differ."
    if problem is None:
        try:
            with service.db.write() as session:
                user = invitations.accept(session, token, name=name.strip(), password=password)
                user_id = user.id
        except InvalidSetting as error:
            problem = f"The {error.field} {error.reason}."
        except (AccessError, Conflict) as error:
            problem = str(error)
    if problem is not None:
        context = {"token": token, "email": email, "name": name, "error": problem}
        return render(request, "accept_invitation.html", context, status_code=422)
    response = RedirectResponse("/", status_code=303)
    start_session(request, response, service, user_id)
    return response
