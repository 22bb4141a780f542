"""Contacts and customers (the CRM) and conversation search, through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.helpdesk import search
from postroom.helpdesk.users import UserService
from postroom.service import Service
from postroom.store.models import Role
from postroom.testing.mails import make_mail
from support import Api
from support import Desk as ConversationsDesk


class Desk(ConversationsDesk):
    """The conversations tests' desk (one connection, mail delivered as a source would), with CRM shortcuts."""

    def patch(self, path: str, body: Any, expect: int = 200) -> Any:
        response = self.api.client.patch(f"/api/v1{path}", json=body)
        assert response.status_code == expect, response.text
        return response.json()

    def search(self, q: str) -> list[str]:
        response = self.api.client.get("/api/v1/conversations", params={"q": q})
        assert response.status_code == 200, response.text
        return sorted(c["subject"] for c in response.json()["items"])


@pytest.fixture
def desk(make_service: Callable[..., Service], db_url: str) -> Desk:
    return Desk(Api(make_service(db_url, start=False)))


def _contact_of(desk: Desk, subject: str) -> dict[str, Any]:
    [conversation] = [c for c in desk.api.conversations() if c["subject"] == subject]
    detail = desk.api.get(f"/conversations/{conversation['id']}")
    return detail


def test_mail_from_a_subdomain_of_a_customers_domain_is_linked_to_that_customer(desk: Desk) -> None:
    acme = desk.api.post("/customers", {"name": "ACME", "domains": ["ACME.test"]}, expect=201)
    assert acme["domains"] == ["acme.test"]
    desk.deliver(make_mail("Broken anvil", sender="Wile <wile@eu.acme.test>"))
    conversation = _contact_of(desk, "Broken anvil")
    assert conversation["customer"] == {"id": acme["id"], "name": "ACME"}
    assert conversation["contact"]["email"] == "wile@eu.acme.test"
    contact = desk.api.get(f"/contacts/{conversation['contact']['id']}")
    assert contact["customer"] == {"id": acme["id"], "name": "ACME"}
    detail = desk.api.get(f"/customers/{acme['id']}")
    assert [c["email"] for c in detail["contacts"]] == ["wile@eu.acme.test"]
    assert [c["subject"] for c in detail["conversations"]] == ["Broken anvil"]
    # A look-alike domain is not a subdomain.
    desk.deliver(make_mail("Not them", sender="Eve <eve@notacme.test>"))
    assert _contact_of(desk, "Not them")["customer"] is None


def test_a_known_contact_without_customer_is_linked_when_its_domain_becomes_a_customers(desk: Desk) -> None:
    desk.deliver(make_mail("First", sender="Bo <bo@globex.test>"))
    assert _contact_of(desk, "First")["customer"] is None
    globex = desk.api.post("/customers", {"name": "Globex", "domains": ["globex.test"]}, expect=201)
    desk.deliver(make_mail("Second", sender="Bo <bo@globex.test>"))
    assert _contact_of(desk, "Second")["customer"]["id"] == globex["id"]
    assert desk.api.get(f"/contacts/{_contact_of(desk, 'Second')['contact']['id']}")["customer_id"] == globex["id"]


def test_a_contact_is_matched_by_a_further_address_and_an_address_belongs_to_one_contact(desk: Desk) -> None:
    desk.deliver(make_mail("One", sender="Ada <ada@customer.example>"))
    desk.deliver(make_mail("Two", sender="Bo <bo@other.example>"))
    ada = _contact_of(desk, "One")["contact"]
    bo = _contact_of(desk, "Two")["contact"]
    changed = desk.patch(
        f"/contacts/{ada['id']}",
        {"addresses": ["Ada.Private@Home.example"], "phone": "+44 1", "notes": "VIP"},
    )
    assert changed["addresses"] == ["ada.private@home.example"]
    assert (changed["phone"], changed["notes"]) == ("+44 1", "VIP")
    desk.deliver(make_mail("From home", sender="Ada L <ada.private@home.example>"))
    assert _contact_of(desk, "From home")["contact"]["id"] == ada["id"]
    # Bo's address, or Ada's further one, cannot be given to another contact.
    conflict = desk.patch(f"/contacts/{ada['id']}", {"addresses": ["bo@other.example"]}, expect=409)
    assert f"contact {bo['id']}" in conflict["detail"]
    conflict = desk.patch(f"/contacts/{bo['id']}", {"addresses": ["ada.private@home.example"]}, expect=409)
    assert f"contact {ada['id']}" in conflict["detail"]
    assert desk.patch(f"/contacts/{ada['id']}", {"addresses": ["not an address"]}, expect=422)
    assert desk.patch(f"/contacts/{ada['id']}", {"nickname": "x"}, expect=422)
    assert desk.patch(f"/contacts/{ada['id']}", {"customer_id": 999}, expect=422)
    assert desk.patch("/contacts/999", {"name": "x"}, expect=404)
    # customer_id is nullable: linked, then unlinked.
    customer = desk.api.post("/customers", {"name": "Home"}, expect=201)
    assert desk.patch(f"/contacts/{ada['id']}", {"customer_id": customer["id"]})["customer_id"] == customer["id"]
    assert desk.patch(f"/contacts/{ada['id']}", {"customer_id": None})["customer_id"] is None


def test_merge_moves_conversations_and_addresses_and_deletes_the_other(desk: Desk) -> None:
    desk.deliver(make_mail("Target mail", sender="<ada@customer.example>"))
    desk.deliver(make_mail("Other mail 1", sender="Ada Lovelace <ada@home.example>"))
    desk.deliver(make_mail("Other mail 2", sender="Ada Lovelace <ada@home.example>", body="Again.\n"))
    target = _contact_of(desk, "Target mail")["contact"]
    other = _contact_of(desk, "Other mail 1")["contact"]
    desk.patch(f"/contacts/{other['id']}", {"addresses": ["ada@work.example"], "phone": "+1 2", "notes": "Old notes"})
    desk.patch(f"/contacts/{target['id']}", {"notes": "Target notes"})
    assert desk.api.post(f"/contacts/{target['id']}/merge", {"other_id": target["id"]}, expect=422)
    merged = desk.api.post(f"/contacts/{target['id']}/merge", {"other_id": other["id"]}, expect=200)
    assert merged["email"] == "ada@customer.example"
    assert sorted(merged["addresses"]) == ["ada@home.example", "ada@work.example"]
    assert merged["name"] == "Ada Lovelace"  # the target had none
    assert merged["phone"] == "+1 2"
    assert "Target notes" in merged["notes"] and "Old notes" in merged["notes"]
    assert sorted(c["subject"] for c in merged["conversations"]) == ["Other mail 1", "Other mail 2", "Target mail"]
    assert desk.api.client.get(f"/api/v1/contacts/{other['id']}").status_code == 404
    # Mail from any of the addresses now goes to the merged contact, and search finds it by them.
    desk.deliver(make_mail("After merge", sender="<ada@work.example>"))
    assert _contact_of(desk, "After merge")["contact"]["id"] == target["id"]
    assert "After merge" in desk.search("ada@work.example")
    assert "Target mail" in desk.search("Lovelace")
    assert desk.api.post("/contacts/999/merge", {"other_id": target["id"]}, expect=404)


def test_customer_domains_are_validated_unique_and_free_mail_is_refused(desk: Desk) -> None:
    acme = desk.api.post("/customers", {"name": "ACME", "domains": ["acme.test", "@Acme.Example."]}, expect=201)
    assert acme["domains"] == ["acme.example", "acme.test"]
    clash = desk.api.post("/customers", {"name": "Copy", "domains": ["ACME.test"]}, expect=409)
    assert "ACME" in clash["detail"] and "acme.test" in clash["detail"]
    for free in ("gmail.com", "GMX.de", "gmx.net", "web.de", "yahoo.co.uk", "proton.me", "mail.ru", "qq.com"):
        refused = desk.api.post("/customers", {"name": "Free", "domains": [free]}, expect=422)
        assert "free-mail" in refused["detail"], free
    for bad in ("localhost", "-x.test", "a..b", "1.2.3.4", "exa mple.com"):
        desk.api.post("/customers", {"name": "Bad", "domains": [bad]}, expect=422)
    # A subdomain of a free-mail name is an organisation of its own.
    desk.api.post("/customers", {"name": "Live events", "domains": ["live.acme-events.co"]}, expect=201)
    desk.api.post("/customers", {"name": "x", "unknown": 1}, expect=422)
    other = desk.api.post("/customers", {"name": "Other"}, expect=201)
    response = desk.api.client.patch(f"/api/v1/customers/{other['id']}", json={"domains": ["acme.example"]})
    assert response.status_code == 409
    response = desk.api.client.patch(f"/api/v1/customers/{acme['id']}", json={"domains": ["acme.test"], "notes": "n"})
    assert response.status_code == 200
    assert response.json()["domains"] == ["acme.test"]
    # The freed domain can go to another customer now.
    response = desk.api.client.patch(f"/api/v1/customers/{other['id']}", json={"domains": ["acme.example"]})
    assert response.status_code == 200, response.text
    assert desk.api.client.delete(f"/api/v1/customers/{other['id']}").status_code == 204
    assert desk.api.client.get(f"/api/v1/customers/{other['id']}").status_code == 404


def test_lists_page_with_cursors_and_filter(desk: Desk) -> None:
    acme = desk.api.post("/customers", {"name": "ACME", "domains": ["acme.test"]}, expect=201)
    desk.api.post("/customers", {"name": "Beta", "domains": ["beta.test"]}, expect=201)
    desk.deliver(*(make_mail(f"Mail {i}", sender=f"Person {i} <p{i}@acme.test>") for i in range(5)))
    desk.deliver(make_mail("Beta mail", sender="Zed <zed@beta.test>"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "customer_id": acme["id"]}
        if cursor:
            params["cursor"] = cursor
        response = desk.api.client.get("/api/v1/contacts", params=params)
        assert response.status_code == 200
        page = response.json()
        seen += [c["email"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            break
        assert 'rel="next"' in response.headers["Link"]
    assert sorted(seen) == [f"p{i}@acme.test" for i in range(5)]
    assert [c["email"] for c in desk.api.get("/contacts", q="Person 3")["items"]] == ["p3@acme.test"]
    assert [c["email"] for c in desk.api.get("/contacts", q="ze")["items"]] == ["zed@beta.test"]
    assert desk.api.get("/contacts", q='"*')["items"] == []
    first = desk.api.get("/customers", limit=1)
    assert [c["name"] for c in first["items"]] == ["ACME"]
    second = desk.api.get("/customers", limit=1, cursor=first["next_cursor"])
    assert [c["name"] for c in second["items"]] == ["Beta"]
    assert second["next_cursor"] is None
    assert [c["name"] for c in desk.api.get("/customers", q="beta")["items"]] == ["Beta"]
    assert desk.api.client.get("/api/v1/contacts", params={"cursor": "garbage"}).status_code == 422


HOSTILE = [
    '"',
    '"unbalanced',
    "*",
    "-",
    "OR",
    "a OR",
    "NEAR(",
    "NEAR(a b)",
    ":",
    "a:b",
    "'",
    "\\",
    "&|!",
    "()",
    "^x",
    "col:word",
    "日本語",
    "Ärger",
    "x" * 600,
    " ".join(["w"] * 50),
    "\x00",
    "%_",
    "AND NOT",
]


def test_search_finds_subjects_texts_quotes_names_and_addresses(desk: Desk) -> None:
    desk.deliver(
        make_mail(
            "Invoice overdue",
            sender="Grace Hopper <grace@navy.example>",
            body="Please check the payment.\n\nOn Mon, 1 Jan 2024, Support <support@example.test> wrote:\n"
            "> Your flamingo shipment left the warehouse.\n",
        ),
        make_mail("Password reset", sender="Linus <linus@kernel.example>", body="I cannot sign in.\n"),
        make_mail("Ärger mit der Lieferung", sender="Jürgen <juergen@beispiel.example>", body="Wo bleibt sie?\n"),
    )
    assert desk.search("invoice") == ["Invoice overdue"]  # subject
    assert desk.search("payment") == ["Invoice overdue"]  # new text
    assert desk.search("flamingo") == ["Invoice overdue"]  # quoted text
    assert desk.search("hopper") == ["Invoice overdue"]  # contact name
    assert desk.search("grace@navy.example") == ["Invoice overdue"]  # address
    assert desk.search("navy") == ["Invoice overdue"]
    assert desk.search("pass") == ["Password reset"]  # the last word as a prefix
    assert desk.search("cannot sig") == ["Password reset"]
    assert desk.search('"sign in"') == ["Password reset"]
    assert desk.search('"in sign"') == []
    assert desk.search("invoice linus") == []  # words are ANDed
    assert desk.search("ärger") == ["Ärger mit der Lieferung"]
    # A renamed contact is found under the new name.
    linus = _contact_of(desk, "Password reset")["contact"]
    desk.patch(f"/contacts/{linus['id']}", {"name": "Torvalds"})
    assert desk.search("torvalds") == ["Password reset"]
    for q in HOSTILE:
        response = desk.api.client.get("/api/v1/conversations", params={"q": q})
        assert response.status_code in (200, 422), (q, response.text)
        response = desk.api.client.get("/api/v1/contacts", params={"q": q})
        assert response.status_code in (200, 422), (q, response.text)
    assert desk.search("OR") == []
    assert desk.search("NEAR(") == []


def test_search_pages_are_the_same_whether_matches_are_collected_or_tested_one_by_one(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rare query's matches are collected first, a common one's conversations are tested in list order
    # (helpdesk.search.MATCH_PROBE decides): both shapes must give the same pages and cursors.
    desk.deliver(
        *(
            make_mail(
                f"Case {i}",
                sender=f"Person {i % 3} <p{i % 3}@acme.test>",
                body=f"The walrus number {i} waits in the café.\n" if i % 2 else "Nothing to see.\n",
            )
            for i in range(11)
        )
    )
    open_ = desk.api.conversations()[0]["id"]
    desk.patch(f"/conversations/{open_}", {"status": "resolved"})

    def pages(q: str, **params: Any) -> list[tuple[list[int], str | None]]:
        seen: list[tuple[list[int], str | None]] = []
        cursor: str | None = None
        while True:
            query = {"q": q, "limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            response = desk.api.client.get("/api/v1/conversations", params=query)
            assert response.status_code == 200, response.text
            body = response.json()
            seen.append(([c["id"] for c in body["items"]], body["next_cursor"]))
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    # Prefixes that FTS5 gets spelt out (walr, walrus-numb, caf) or not (café, zzz), contacts, phrases.
    queries = ["walrus", "walr", "wal number", '"walrus number"', "walrus-numb", "person 1", "p2@acme.test"]
    queries += ["acme", "caf", "café", "nothing", "zzz", "walrus nothing", "person walrus"]
    for q in queries:
        for params in ({}, {"status": "open"}):
            monkeypatch.setattr(search, "MATCH_PROBE", {"sqlite": 0, "postgresql": 0})
            tested = pages(q, **params)
            monkeypatch.setattr(search, "MATCH_PROBE", {"sqlite": 10**6, "postgresql": 10**6})
            collected = pages(q, **params)
            assert tested == collected, (q, params)
    assert sum(len(ids) for ids, _ in pages("walrus")) == 5
    assert sum(len(ids) for ids, _ in pages("acme")) == 11


def test_agents_read_and_change_contacts_and_customers_and_anonymous_nothing(desk: Desk) -> None:
    service = desk.api.service
    with service.db.write() as session:
        agent = UserService().create(session, "agent@example.com", role=Role.AGENT)
        token = create_token(session, "agent", user_id=agent.id)
    app = create_app(service)
    as_agent = TestClient(app)
    as_agent.headers["Authorization"] = f"Bearer {token}"
    created = as_agent.post("/api/v1/customers", json={"name": "Initech", "domains": ["initech.test"]})
    assert created.status_code == 201, created.text
    desk.deliver(make_mail("Stapler", sender="Milton <milton@initech.test>"))
    [contact] = as_agent.get("/api/v1/contacts", params={"customer_id": created.json()["id"]}).json()["items"]
    assert as_agent.patch(f"/api/v1/contacts/{contact['id']}", json={"phone": "+1 555"}).status_code == 200
    assert TestClient(app).get("/api/v1/contacts").status_code == 401
    assert TestClient(app).get("/api/v1/customers").status_code == 401
