"""One pagination scheme for every list: an opaque ``cursor`` and a ``limit``; ``next_cursor`` in the body
and a ``Link: <…>; rel="next"`` header (RFC 8288).

Pages are keyset pages: a list is ordered by a few columns ending with the primary key, and the cursor
holds the values of the last row shown, so the next page starts strictly after it. Rows added meanwhile
never shift a page (unlike an offset), and a page costs an index range scan however deep it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from postroom.errors import InvalidSetting

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PageRequest:
    cursor: str | None
    limit: int


def page_request(
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page; omit for the first.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
) -> PageRequest:
    """The query parameters of every list (use as ``Annotated[PageRequest, Depends(page_request)]``)."""
    return PageRequest(cursor, limit)


@dataclass(frozen=True, slots=True)
class Order:
    """One column of a list's order; the last of a list's orders must be unique (the primary key)."""

    column: InstrumentedAttribute[Any]
    descending: bool = False


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, orders: Sequence[Order]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidSetting("cursor", "is not a cursor of this list (pass next_cursor as it came)") from None
    if not isinstance(values, list) or len(values) != len(orders):
        raise InvalidSetting("cursor", "is not a cursor of this list (pass next_cursor as it came)")
    return [_typed(order, value) for order, value in zip(orders, values, strict=True)]


def keyset_page(
    session: Session, query: Select[Any], orders: Sequence[Order], page: PageRequest
) -> tuple[list[Any], str | None]:
    """One page of ``query`` (a select of ORM rows) in ``orders``, and the cursor of the next, if any."""
    if page.cursor:
        query = query.where(_after(orders, decode_cursor(page.cursor, orders)))
    query = query.order_by(*(o.column.desc() if o.descending else o.column.asc() for o in orders))
    rows = list(session.scalars(query.limit(page.limit + 1)))
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, o.column.key) for o in orders])


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Add ``Link: <url>; rel="next"`` for the next page (RFC 8288 §3)."""
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'


def _after(orders: Sequence[Order], values: Sequence[Any]) -> ColumnElement[bool]:
    # (a, b, id) after (va, vb, vid), each in its own direction:
    # a ≻ va  OR  (a = va AND b ≻ vb)  OR  (a = va AND b = vb AND id ≻ vid)
    terms: list[ColumnElement[bool]] = []
    for i, order in enumerate(orders):
        equal = [orders[j].column == values[j] for j in range(i)]
        beyond = order.column < values[i] if order.descending else order.column > values[i]
        terms.append(and_(*equal, beyond))
    return or_(*terms)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _typed(order: Order, value: Any) -> Any:
    python_type: type[Any] | None
    column_type = order.column.type
    if isinstance(column_type, TypeDecorator):
        # Our UTC timestamps wrap DateTime, and a TypeDecorator reports ``object`` as its Python type.
        column_type = column_type.impl_instance
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        python_type = None
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if python_type is int and not isinstance(value, bool) and isinstance(value, int):
            return value
        if python_type is int:
            raise ValueError
    except ValueError:
        raise InvalidSetting("cursor", "is not a cursor of this list (pass next_cursor as it came)") from None
    return value
