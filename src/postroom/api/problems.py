"""One error shape for every 4xx and 5xx answer: problem details (RFC 9457), ``application/problem+json``.

Every error body has ``type``, ``title``, ``status`` and ``detail`` (RFC 9457 §3.1). ``type`` is a URN of
the form ``urn:postroom:problem:<slug>`` (RFC 8141): stable, never dereferenced, one per kind of problem
(``validation``, ``invalid-setting``, ``not-found``, ``conflict``, ``bad-request``, ``unauthorized``,
``forbidden``, ``method-not-allowed``, ``payload-too-large``, ``too-many-requests``, ``unavailable``,
``internal``; other statuses ``http-<status>``). ``detail`` is always a human sentence.

Extension members (RFC 9457 §3.2): ``errors``, a list of ``{field, message}`` for a refused request, where
``field`` is a dotted path (``body.to.0``, ``query.limit``) or a setting's name (``password``,
``env.EMAIL_NAME``); and ``field`` itself when exactly one field is wrong.

No answer echoes what the client sent: a password sent under a misspelt key (``passwd``) would otherwise
come back in responses, proxies' logs and browser tools. A 500 says nothing of its cause; the log has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from postroom.errors import (
    AccessError,
    ConfigurationError,
    Conflict,
    InvalidSetting,
    MailError,
    NotFound,
    PostroomError,
    SignInFailed,
    SignInThrottled,
    WebhookRejected,
)

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:postroom:problem:"

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    422: "validation",
    429: "too-many-requests",
    500: "internal",
    503: "unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field (`body.to.0`, `query.limit`) or the setting's name.")
    message: str = Field(description="What is wrong with it; never the value sent.")


class Problem(BaseModel):
    """An error (RFC 9457 problem details), served as `application/problem+json`."""

    type: str = Field(description="`urn:postroom:problem:<slug>`; stable, one per kind of problem.")
    title: str = Field(description="The status phrase, e.g. `Not Found`.")
    status: int = Field(description="The HTTP status code, repeated.")
    detail: str = Field(description="What went wrong, for a human.")
    field: str | None = Field(default=None, description="The one field that is wrong, when there is one.")
    errors: list[FieldError] | None = Field(default=None, description="Every field that is wrong (422).")


def problem_type(status: int) -> str:
    return TYPE_PREFIX + _SLUGS.get(status, f"http-{status}")


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else problem_type(status),
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
        if len({e.field for e in errors}) == 1:
            body["field"] = errors[0].field
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FastAPI's validation errors as ``{field, message}``, without ``input`` or ``ctx`` (which may quote
    what was sent): the location and pydantic's message say what is wrong.
    """
    return [
        FieldError(field=".".join(str(part) for part in error.get("loc", ())), message=str(error.get("msg", "")))
        for error in errors
    ]


def quiet_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without what the client sent (``input``, ``ctx``)."""
    return [{key: value for key, value in error.items() if key not in ("input", "ctx")} for error in errors]


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return problem_response(422, f"the request is not valid: {summary}", errors=errors)


async def _postroom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PostroomError)
    if isinstance(exc, InvalidSetting):
        return problem_response(
            422, str(exc), slug="invalid-setting", errors=[FieldError(field=exc.field, message=exc.reason)]
        )
    if isinstance(exc, NotFound):
        return problem_response(404, str(exc))
    if isinstance(exc, Conflict):
        return problem_response(409, str(exc))
    if isinstance(exc, ConfigurationError | MailError):
        return problem_response(400, str(exc))
    if isinstance(exc, WebhookRejected):
        # Its reason is written for the caller (see postroom.errors.WebhookRejected).
        return problem_response(exc.status_code, exc.reason)
    if isinstance(exc, AccessError):
        # Sign-in and invitation refusals say why in words meant for the caller, and carry their status.
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, SignInThrottled) else None
        if isinstance(exc, SignInFailed):
            headers = {"WWW-Authenticate": "Bearer"}
        return problem_response(exc.status_code, str(exc), headers=headers)
    return await _unexpected(request, exc)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else _title(exc.status_code)
    # Its headers stay: the challenge of a 401 (RFC 9110 §11.6.1), Allow of a 405 (§15.5.6), Retry-After of
    # a 429 or 503 (RFC 6585 §4, RFC 9110 §10.2.3).
    return problem_response(exc.status_code, detail, headers=dict(exc.headers) if exc.headers else None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The message of an unexpected error may hold anything (a query, a path, a secret): logged, not shown.
    log.error("api.unhandled_error", method=request.method, path=request.url.path, exc_info=exc)
    return problem_response(500, "an unexpected error occurred; the server log has the details")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(PostroomError, _postroom_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Served by Starlette's outermost middleware, which re-raises after answering (the server logs it too).
    app.add_exception_handler(Exception, _unexpected)


_EXAMPLES: dict[int, tuple[str, dict[str, Any]]] = {
    401: ("No valid bearer token.", {"detail": "missing bearer token"}),
    403: (
        "The signed-in user's role may not do this.",
        {"detail": "this needs the admin role: agents work conversations, but cannot read or change connections"},
    ),
    404: ("No such resource.", {"detail": "no connection 42"}),
    409: (
        "A unique value is taken, or the state does not allow this.",
        {"detail": "a connection named 'Support' already exists"},
    ),
    422: (
        "The request is not valid; `errors` names every field.",
        {
            "detail": "the request is not valid: body.passwd: Extra inputs are not permitted",
            "field": "body.passwd",
            "errors": [{"field": "body.passwd", "message": "Extra inputs are not permitted"}],
        },
    ),
    400: ("The request cannot be carried out as it is.", {"detail": "header 'subject' must not contain CR or LF"}),
    413: ("The request is too large.", {"detail": "the request is larger than 26214400 bytes"}),
    503: ("Not available now; try again later.", {"detail": "this inbound webhook is not configured correctly"}),
}


# What any route behind a bearer token may answer.
BEARER_ERRORS = (401, 403, 404, 409, 422)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for ``statuses``: the one Problem schema, served as application/problem+json,
    with an example each. Pass to ``include_router(..., responses=…)`` (or a route's ``responses``).
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = _EXAMPLES.get(status, (_title(status), {"detail": _title(status)}))
        body = {"type": problem_type(status), "title": _title(status), "status": status, **example}
        if status == 422 and "errors" not in example:
            body["errors"] = []
        responses[status] = {
            "description": description,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}, "example": body}},
        }
    return responses


def add_problem_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put Problem and FieldError into the document's components (the responses refer to them by $ref)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions)
    components["Problem"] = schema
    # Every operation behind a bearer token may answer these, whichever router it came from.
    common = problem_responses(*BEARER_ERRORS)
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                for status, response in common.items():
                    responses.setdefault(str(status), response)
            for status, response in responses.items():
                # A route that documents an error by its description alone answers it as a problem too.
                if status[:1] in ("4", "5") and "content" not in response:
                    response["content"] = problem_responses(int(status))[int(status)]["content"]
    return openapi
