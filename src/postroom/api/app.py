"""The FastAPI application: routers, error mapping, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from postroom import __version__
from postroom.api.deps import current_principal, require_admin
from postroom.api.routes import connections, conversations, inbound, raw_messages
from postroom.errors import ConfigurationError, Conflict, InvalidSetting, MailError, NotFound, PostroomError
from postroom.service import Service


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="Postroom",
        version=__version__,
        description="Email channel for support teams: connections (mailboxes), conversations, replies.",
    )
    app.state.service = service
    # Every user works conversations; connections and the raw store are the administrators'.
    signed_in, admin = [Depends(current_principal)], [Depends(require_admin)]
    app.include_router(connections.router, prefix="/api/v1", dependencies=admin)
    app.include_router(conversations.router, prefix="/api/v1", dependencies=signed_in)
    app.include_router(raw_messages.router, prefix="/api/v1", dependencies=admin)
    # No bearer token: the provider's signature on each request is the authentication.
    app.include_router(inbound.router, prefix="/api/v1")

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(quiet_errors(exc.errors()))}, status_code=422)

    @app.exception_handler(PostroomError)
    async def postroom_error(_request: Request, exc: PostroomError) -> JSONResponse:
        if isinstance(exc, InvalidSetting):
            return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)
        if isinstance(exc, NotFound):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        if isinstance(exc, Conflict):
            return JSONResponse({"detail": str(exc)}, status_code=409)
        if isinstance(exc, ConfigurationError | MailError):
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    return app


def quiet_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without what the client sent: ``input`` would echo a password sent under
    a misspelt key (``passwd``) back into responses, proxies' logs and browser tools, and ``ctx`` may quote
    it too. The type, location and message say what is wrong.
    """
    return [{key: value for key, value in error.items() if key not in ("input", "ctx")} for error in errors]
