"""API conventions, checked on the whole OpenAPI document (so every route, whoever adds it) and in behaviour:
problem details (RFC 9457) for every error, operation ids, pages with cursor and limit, unknown fields refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.helpdesk.users import UserService
from postroom.service import Service
from postroom.store.models import Role
from support import Api

PROBLEM_REF = "#/components/schemas/Problem"
METHODS = ("get", "put", "post", "patch", "delete")
BODY: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "s3cret-pass",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # The document does not depend on the service's state: the app is built on a service never started.
    app = create_app(None)  # type: ignore[arg-type]
    return app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(document)]
    assert all(ids), [f"{m} {p}" for p, m, o in operations(document) if not o.get("operationId")]
    assert len(ids) == len(set(ids)), sorted(str(i) for i in ids if ids.count(i) > 1)


def test_operation_ids_are_the_route_functions(document: dict[str, Any]) -> None:
    assert document["paths"]["/api/v1/connections"]["get"]["operationId"] == "list_connections"


def test_every_error_response_is_the_problem_schema(document: dict[str, Any]) -> None:
    wrong = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            content = response.get("content", {})
            if list(content) != ["application/problem+json"] or content["application/problem+json"]["schema"] != {
                "$ref": PROBLEM_REF
            }:
                wrong.append(f"{method.upper()} {path} {status}")
    assert not wrong
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_routes_behind_a_token_document_the_common_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if "security" not in operation:
            continue
        for status in ("401", "403", "404", "409", "422"):
            assert status in operation["responses"], f"{method.upper()} {path} {status}"
            assert "example" in operation["responses"][status]["content"]["application/problem+json"]


def test_every_list_takes_cursor_and_limit(document: dict[str, Any]) -> None:
    lists = 0
    for path, method, operation in operations(document):
        if method != "get":
            continue
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        schema = resolve(document, content["schema"])
        if {"items", "next_cursor"} <= set(schema.get("properties", {})):
            lists += 1
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            assert {"cursor", "limit"} <= names, f"GET {path}"
    assert lists >= 4


def test_no_list_is_a_bare_array(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if method == "get" and content is not None:
            assert resolve(document, content["schema"]).get("type") != "array", f"GET {path}"


def test_every_request_body_refuses_unknown_fields(document: dict[str, Any]) -> None:
    loose = []
    for path, method, operation in operations(document):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if media != "application/json":
                continue
            schema = resolve(document, content["schema"])
            if schema.get("additionalProperties") is not False:
                loose.append(f"{method.upper()} {path}")
    assert not loose


# -- behaviour ----------------------------------------------------------------------------------------


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    return Api(make_service(start=False))


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:postroom:problem:")
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    return problem


def test_an_unknown_field_is_refused_naming_it_and_not_echoing_it(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    for method, path, body in (
        ("post", "/connections", {**BODY, "pasword": "leak-me-1"}),
        ("patch", f"/connections/{created['id']}", {"pasword": "leak-me-1"}),
        ("patch", f"/connections/{created['id']}/mailboxes/{created['mailboxes'][0]['id']}", {"pasword": "leak-me-1"}),
        ("post", "/raw-messages/replay", {"ids": [], "pasword": "leak-me-1"}),
    ):
        response = api.client.request(method, f"/api/v1{path}", json=body)
        problem = is_problem(response, 422)
        assert problem["type"] == "urn:postroom:problem:validation"
        assert problem["errors"] == [{"field": "body.pasword", "message": "Extra inputs are not permitted"}]
        assert problem["field"] == "body.pasword"
        assert "leak-me-1" not in response.text


def test_query_errors_name_the_parameter(api: Api) -> None:
    problem = is_problem(api.client.get("/api/v1/connections", params={"limit": 0}), 422)
    assert [e["field"] for e in problem["errors"]] == ["query.limit"]


def test_a_setting_the_service_refuses_is_a_422_problem_with_the_field(api: Api) -> None:
    problem = is_problem(api.client.post("/api/v1/connections", json={**BODY, "imap_port": 70000}), 422)
    assert problem["type"] == "urn:postroom:problem:invalid-setting"
    assert problem["field"] == "imap_port"
    assert problem["errors"] == [{"field": "imap_port", "message": "70000 is outside the port range 1-65535"}]


def test_not_found_conflict_and_unknown_routes_are_problems(api: Api) -> None:
    assert "no connection 999" in is_problem(api.client.get("/api/v1/connections/999"), 404)["detail"]
    assert is_problem(api.client.get("/api/v1/no-such-thing"), 404)["type"] == "urn:postroom:problem:not-found"
    api.post("/connections", BODY, expect=201)
    conflict = is_problem(api.client.post("/api/v1/connections", json={**BODY, "address": "o@example.test"}), 409)
    assert conflict["type"] == "urn:postroom:problem:conflict"
    not_allowed = api.client.put("/api/v1/connections")
    is_problem(not_allowed, 405)
    assert not_allowed.headers["allow"]  # RFC 9110 §15.5.6


def test_401_keeps_its_challenge_and_403_names_the_role(api: Api, service_for_roles: tuple[TestClient, str]) -> None:
    client, agent_token = service_for_roles
    anonymous = client.get("/api/v1/connections")
    assert is_problem(anonymous, 401)["type"] == "urn:postroom:problem:unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    forbidden = client.get("/api/v1/connections", headers={"Authorization": f"Bearer {agent_token}"})
    assert "admin role" in is_problem(forbidden, 403)["detail"]


@pytest.fixture
def service_for_roles(make_service: Callable[..., Service]) -> tuple[TestClient, str]:
    service = make_service(start=False)
    with service.db.write() as session:
        create_token(session, "admin")  # the first administrator exists
        agent = UserService().create(session, "agent@example.com", role=Role.AGENT)
        agent_token = create_token(session, "agent", user_id=agent.id)
    return TestClient(create_app(service)), agent_token


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(make_service: Callable[..., Service]) -> None:
    service = make_service(start=False)
    app = create_app(service)
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    app.include_router(router)
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom")
    problem = is_problem(response, 500)
    assert problem["type"] == "urn:postroom:problem:internal"
    assert "hunter2" not in response.text and "/srv/secret" not in response.text
    assert "RuntimeError" not in response.text


# -- pages of the lists owned here --------------------------------------------------------------------


def test_connections_come_in_pages_with_a_link_to_the_next(api: Api) -> None:
    for i in range(3):
        api.post("/connections", {**BODY, "name": f"S{i}", "address": f"s{i}@example.test"}, expect=201)
    first = api.client.get("/api/v1/connections", params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [c["name"] for c in page["items"]] == ["S0", "S1"]
    assert page["next_cursor"] and 'rel="next"' in first.headers["link"]
    rest = api.get("/connections", limit=2, cursor=page["next_cursor"])
    assert ([c["name"] for c in rest["items"]], rest["next_cursor"]) == (["S2"], None)
    assert [c["name"] for c in api.items("/connections", limit=1)] == ["S0", "S1", "S2"]
    is_problem(api.client.get("/api/v1/connections", params={"cursor": "not-a-cursor"}), 422)


def test_logs_and_raw_messages_are_pages(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    assert set(api.get(f"/connections/{created['id']}/logs")) == {"items", "next_cursor"}
    assert api.get("/raw-messages") == {"items": [], "next_cursor": None}
    is_problem(api.client.get("/api/v1/connections/999/logs"), 404)


# -- the mailboxes of a connection --------------------------------------------------------------------


def test_mailboxes_are_typed_and_change_one_at_a_time(api: Api) -> None:
    created = api.post(
        "/connections",
        {**BODY, "address": "a@example.test, b@example.test", "password": ["pa", "pb"], "imap_port": "993, 1993"},
        expect=201,
    )
    # Numbers and flags keep their type; ports that differ are null on the connection, typed per mailbox.
    assert (created["imap_port"], created["smtp_port"], created["validate_certificate"]) == (None, 587, True)
    cid = created["id"]
    boxes = api.items(f"/connections/{cid}/mailboxes")
    assert [(b["address"], b["imap_port"], b["validate_certificate"]) for b in boxes] == [
        ("a@example.test", 993, True),
        ("b@example.test", 1993, True),
    ]
    second = boxes[1]["id"]
    path = f"/api/v1/connections/{cid}/mailboxes/{second}"
    # A new port needs the password again, as in the comma-separated form.
    refused = is_problem(api.client.patch(path, json={"imap_port": 2993}), 422)
    assert refused["field"] == "password"
    changed = api.client.patch(path, json={"imap_port": 2993, "password": "pb-2", "reply_to": "r@example.test"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["imap_port"], changed.json()["reply_to"], changed.json()["password"]) == (
        2993,
        "r@example.test",
        "********",
    )
    cleared = api.client.patch(path, json={"reply_to": None})
    assert cleared.json()["reply_to"] == ""
    assert api.get(f"/connections/{cid}/mailboxes/{boxes[0]['id']}")["imap_port"] == 993
    assert is_problem(api.client.patch(path, json={"imap_port": "x"}), 422)["field"] == "body.imap_port"
    is_problem(api.client.get(f"/api/v1/connections/{cid}/mailboxes/999999"), 404)
    # The comma-separated form keeps working.
    both = api.client.patch(f"/api/v1/connections/{cid}", json={"imap_port": "995, 995", "password": ["pa", "pb"]})
    assert both.status_code == 200, both.text
    assert both.json()["imap_port"] == 995


def test_patch_null_clears_reply_to_on_the_connection(api: Api) -> None:
    created = api.post("/connections", {**BODY, "reply_to": "r@example.test"}, expect=201)
    assert created["reply_to"] == "r@example.test"
    cleared = api.client.patch(f"/api/v1/connections/{created['id']}", json={"reply_to": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["reply_to"] == ""
    # The view sent back as it came changes nothing (null ports of differing mailboxes are kept).
    view = cleared.json()
    body = {k: v for k, v in view.items() if k in BODY or k in ("imap_port", "smtp_port", "validate_certificate")}
    again = api.client.patch(f"/api/v1/connections/{created['id']}", json={**body, "imap_port": None})
    assert again.status_code == 200, again.text
    assert again.json()["imap_port"] == 993


def test_an_http_error_keeps_its_headers(make_service: Callable[..., Service]) -> None:
    app = create_app(make_service(start=False))
    router = APIRouter()

    @router.get("/slow-down")
    def slow_down() -> None:
        raise HTTPException(429, "too many sign-ins", headers={"Retry-After": "30"})

    app.include_router(router)
    response = TestClient(app).get("/slow-down")
    assert is_problem(response, 429)["detail"] == "too many sign-ins"
    assert response.headers["retry-after"] == "30"
