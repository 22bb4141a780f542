"""Keyset pages (postroom.api.pagination): cursors round trip, pages stay put while rows arrive, bad cursors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from postroom.api.pagination import Order, PageRequest, decode_cursor, encode_cursor, keyset_page
from postroom.errors import InvalidSetting
from postroom.service import Service
from support import Api

START = datetime(2026, 1, 1, tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(20))


ORDERS = [Order(Row.at, descending=True), Order(Row.id, descending=True)]


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        # Ties on "at": the id breaks them, so no row is shown twice or skipped.
        session.add_all(Row(id=i, at=START + timedelta(minutes=i // 2), name=f"r{i}") for i in range(1, 8))
        session.commit()
        yield session
    engine.dispose()


def walk(session: Session, limit: int, between: Callable[[], None] = lambda: None) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        rows, cursor = keyset_page(session, select(Row), ORDERS, PageRequest(cursor, limit))
        names += [r.name for r in rows]
        if cursor is None:
            return names
        between()


def test_a_cursor_round_trips_its_values() -> None:
    values = [START, 42]
    assert decode_cursor(encode_cursor(values), ORDERS) == values


def test_pages_walk_every_row_once_in_order(session: Session) -> None:
    everything = [r.name for r in session.scalars(select(Row).order_by(Row.at.desc(), Row.id.desc()))]
    for limit in (1, 2, 3, 7, 50):
        assert walk(session, limit) == everything


def test_rows_inserted_meanwhile_never_shift_a_page(session: Session) -> None:
    expected = walk(session, 2)
    added = iter(range(100, 110))

    def insert_newer() -> None:
        # Newer rows go before the first page (an offset would repeat a row on the next page).
        number = next(added)
        session.add(Row(id=number, at=START + timedelta(days=1), name=f"new{number}"))
        session.commit()

    assert walk(session, 2, insert_newer) == expected


@pytest.mark.parametrize("cursor", ["not base64 !", encode_cursor([1]), encode_cursor(["yesterday", 1]), "W10"])
def test_a_bad_cursor_is_an_invalid_setting_named_cursor(session: Session, cursor: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        keyset_page(session, select(Row), ORDERS, PageRequest(cursor, 2))
    assert refused.value.field == "cursor"


def test_a_bad_cursor_is_a_422_problem(make_service: Callable[..., Service]) -> None:
    api = Api(make_service(start=False))
    response = api.client.get("/api/v1/raw-messages", params={"cursor": "bm9wZQ"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["field"]) == ("urn:postroom:problem:invalid-setting", "cursor")
