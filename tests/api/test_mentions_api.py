"""/api/v1/mentions: the notes that name me, newest first, paged; marking one seen; never another's."""

from __future__ import annotations

from collections.abc import Callable

from test_work_model import add_user, client_of

from postroom.service import Service
from postroom.testing.mails import make_mail
from support import Api, Desk


def test_a_mentioned_agent_lists_the_note_marks_it_seen_and_cannot_touch_anothers(
    make_service: Callable[..., Service],
) -> None:
    desk = Desk(Api(make_service(start=False)))
    service = desk.api.service
    ann = add_user(service, "Ann Agent", "ann@support.example")
    bob = add_user(service, "Bob B", "bob@support.example")
    ann_client, bob_client = client_of(service, ann), client_of(service, bob)
    desk.deliver(make_mail("Refund please"))
    [conversation] = desk.api.conversations()
    cid = conversation["id"]
    for text in ("@Bob can you check?", "fyi @bob again", "a note for nobody"):
        assert ann_client.post(f"/api/v1/conversations/{cid}/notes", json={"text": text}).status_code == 201

    page = bob_client.get("/api/v1/mentions", params={"limit": 1})
    assert page.status_code == 200
    first = page.json()
    assert [m["excerpt"] for m in first["items"]] == ["fyi @bob again"]
    assert first["next_cursor"] and 'rel="next"' in page.headers["link"]
    second = bob_client.get("/api/v1/mentions", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [m["excerpt"] for m in second["items"]] == ["@Bob can you check?"]
    mention = second["items"][0]
    assert (mention["conversation_id"], mention["author_id"], mention["author"]) == (cid, ann, "Ann Agent")
    assert mention["seen_at"] is None

    # Ann was not mentioned; she can neither see nor mark Bob's mentions.
    assert ann_client.get("/api/v1/mentions").json()["items"] == []
    assert ann_client.post(f"/api/v1/mentions/{mention['id']}/seen").status_code == 404

    seen = bob_client.post(f"/api/v1/mentions/{mention['id']}/seen")
    assert seen.status_code == 200 and seen.json()["seen_at"] is not None
    unseen = bob_client.get("/api/v1/mentions", params={"seen": "false"}).json()["items"]
    assert [m["excerpt"] for m in unseen] == ["fyi @bob again"]
    assert [m["id"] for m in bob_client.get("/api/v1/mentions", params={"seen": "true"}).json()["items"]] == [
        mention["id"]
    ]
