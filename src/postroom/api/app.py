"""The FastAPI application: routers, error mapping, OpenAPI at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from postroom import __version__, web
from postroom.api import problems
from postroom.api.deps import current_principal, require_admin
from postroom.api.problems import problem_responses, quiet_errors
from postroom.api.routes import (
    api_tokens,
    auth,
    connections,
    contacts,
    conversations,
    customers,
    inbound,
    invitations,
    mentions,
    raw_messages,
    teams,
    users,
)
from postroom.service import Service


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="Postroom",
        version=__version__,
        description="Email channel for support teams: connections (mailboxes), conversations, replies.",
        generate_unique_id_function=operation_id,
        # Every route may refuse its request; FastAPI's own 422 schema would otherwise be documented.
        responses=problem_responses(422),
    )
    problems.install(app)
    _document_problems(app)
    app.state.service = service
    # Every user works conversations; connections and the raw store are the administrators'.
    signed_in, admin = [Depends(current_principal)], [Depends(require_admin)]
    # The errors every router behind a bearer token may answer, documented on each of its routes.
    errors = problem_responses(*problems.BEARER_ERRORS)
    app.include_router(connections.router, prefix="/api/v1", dependencies=admin, responses=errors)
    app.include_router(conversations.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    # Every user reads teams; their changes check the admin role route by route.
    app.include_router(teams.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    # Every user's own mentions in notes.
    app.include_router(mentions.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    # The CRM is the team's: every user reads and changes contacts and customers.
    app.include_router(contacts.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    app.include_router(customers.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    app.include_router(raw_messages.router, prefix="/api/v1", dependencies=admin, responses=errors)
    # People: /users/me and /tokens are every user's own; the other user routes check the admin role each.
    app.include_router(users.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    app.include_router(api_tokens.router, prefix="/api/v1", dependencies=signed_in, responses=errors)
    app.include_router(invitations.router, prefix="/api/v1", dependencies=admin, responses=errors)
    # No bearer token: a password, or the signed invitation link, is the authentication.
    app.include_router(auth.router, prefix="/api/v1", responses=problem_responses(401, 422, 429))
    app.include_router(invitations.public, prefix="/api/v1", responses=problem_responses(400, 409, 410, 422))
    # No bearer token: the provider's signature on each request is the authentication.
    app.include_router(inbound.router, prefix="/api/v1", responses=problem_responses(400, 401, 404, 413, 503))

    # The browser app at / (pages, static files), on the same services.
    web.install(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def operation_id(route: APIRoute) -> str:
    """The route function's name (``list_connections``): stable and readable in generated clients."""
    return route.name


def _document_problems(app: FastAPI) -> None:
    # The error responses refer to the Problem schema by $ref; it is added to the document once built.
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.add_problem_schemas(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app", "operation_id", "quiet_errors"]
