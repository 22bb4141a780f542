"""Roles on every route: every path and method of the OpenAPI document, as an agent and without a token.

New routes are checked as they appear: a path must be public, for administrators, or for every user, and
one this module does not know is still checked for 401 without a token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.api.deps import ADMIN_NEEDED
from postroom.api.tokens import create_token
from postroom.helpdesk.users import UserService
from postroom.service import Service
from postroom.store.models import Role

# No bearer token: a provider's signature, a password, or a signed invitation link authenticates them.
PUBLIC = re.compile(r"^(/health|/api/v1/auth/token|/api/v1/invitations/accept|/api/v1/inbound/.*)$")
# Agents work conversations; everything else of these is the administrators'.
ADMIN_ONLY = re.compile(
    r"^/api/v1/(connections|raw-messages|users(?!/me$)|invitations(?!/accept$))(/.*)?$|^/api/v1/tokens/\{token_id\}$"
)
AGENT_ALLOWED = re.compile(r"^/api/v1/(conversations|attachments|mentions|users/me$|tokens$)")


@pytest.fixture
def clients(make_service: Callable[..., Service]) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    service = make_service(start=False)
    with service.db.write() as session:
        agent = UserService().create(session, "agent@example.com", role=Role.AGENT)
        agent_token = create_token(session, "agent", user_id=agent.id)
        admin_token = create_token(session, "admin")
    app = create_app(service)
    anonymous = TestClient(app, raise_server_exceptions=False)
    as_agent = TestClient(app, raise_server_exceptions=False)
    as_agent.headers["Authorization"] = f"Bearer {agent_token}"
    with TestClient(app) as admin:
        admin.headers["Authorization"] = f"Bearer {admin_token}"
        # An administrator's token id, for "revoke another user's token".
        ids = {"token_id": str(admin.get("/api/v1/tokens").json()["items"][0]["id"])}
    yield anonymous, as_agent, {**ids, "secret": agent_token}


def _routes(app_client: TestClient) -> list[tuple[str, str]]:
    openapi = app_client.app.openapi()  # type: ignore[attr-defined]
    return [
        (path, method)
        for path, methods in openapi["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _url(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "1"), path)


def test_agents_get_403_on_admin_routes_and_not_on_theirs(
    clients: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    _anonymous, agent, ids = clients
    checked_admin = checked_agent = 0
    for path, method in _routes(agent):
        if PUBLIC.match(path):
            continue
        response = agent.request(method.upper(), _url(path, ids), json={})
        where = f"{method.upper()} {path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        assert ids["secret"] not in response.text, where
        if ADMIN_ONLY.match(path):
            assert response.status_code == 403, f"{where}: {response.status_code} {response.text}"
            assert response.json()["detail"] == ADMIN_NEEDED, where
            checked_admin += 1
        elif AGENT_ALLOWED.match(path):
            assert response.status_code != 403, f"{where}: {response.text}"
            checked_agent += 1
    # The lists above match what the app has: a renamed prefix would silently check nothing.
    assert checked_admin >= 20 and checked_agent >= 8


def test_every_route_but_the_public_ones_needs_a_token(
    clients: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    anonymous, _agent, ids = clients
    public = 0
    for path, method in _routes(anonymous):
        if PUBLIC.match(path):
            public += 1
            continue
        response = anonymous.request(method.upper(), _url(path, ids), json={})
        assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code} {response.text}"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert public >= 4
