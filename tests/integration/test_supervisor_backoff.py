"""A start that keeps failing for a temporary reason is retried with a growing wait, showing ERROR.

The supervisor waits ``restart_first_delay`` after the first failed start of a revision and twice as
long after each further one (up to ``restart_max_delay``); between tries the connection shows ERROR
with the reason, and a new revision (the admin fixes the settings) starts at once with a fresh count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from postroom.channels.supervisor import SupervisorPolicy
from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import FAST, Api, connection_body, free_port, wait_until

FIRST_DELAY = 0.3


def _events(api: Api, connection_id: int, event: str) -> list[dict[str, Any]]:
    lines = api.items(f"/connections/{connection_id}/logs", limit=200)
    return sorted((line for line in lines if line["event"] == event), key=lambda line: line["id"])


def test_failed_starts_are_retried_with_doubling_waits_and_show_error_between(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    policies = replace(
        FAST, supervisor=SupervisorPolicy(poll_seconds=0.1, lease_seconds=10, restart_first_delay=FIRST_DELAY)
    )
    service = make_service(policies=policies)
    api = Api(service)
    refused = free_port()  # nobody listens: every sign-in fails at once with a temporary error
    body = connection_body(dovecot, dovecot_user, smtp_server, imap_port=refused, imap_encryption="none")
    cid = api.post("/connections", body, expect=201)["id"]
    api.post(f"/connections/{cid}/start")

    for failures in range(1, 6):
        wait_until(lambda n=failures: len(_events(api, cid, "start_failed")) >= n, timeout=30)
        # The failed runner shows ERROR with the reason (naming protocol and server), which stays until
        # the next try begins, at least FIRST_DELAY later.
        api.wait_status(cid, "ERROR", message=str(refused))
        assert "IMAP" in api.get(f"/connections/{cid}")["status_message"]

    starts = [datetime.fromisoformat(line["at"]) for line in _events(api, cid, "starting")]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(starts)]
    assert len(gaps) >= 4, gaps
    # Each wait at least doubles the one before (only lower bounds: a loaded machine only adds to them);
    # retrying at a fixed pace would leave the fourth gap near FIRST_DELAY.
    for number, gap in enumerate(gaps[:4]):
        assert gap >= 0.9 * FIRST_DELAY * 2**number, gaps

    # The admin fixes the settings: the new revision starts at once, not after the current wait. A new port
    # is a new destination for the password, which is therefore given again.
    fixed = {"imap_port": dovecot.ports.imaps, "imap_encryption": "ssl", "password": dovecot_user.password}
    response = api.client.patch(f"/api/v1/connections/{cid}", json=fixed)
    assert response.status_code == 200, response.text
    api.wait_status(cid, "RUNNING", timeout=15)
    assert cid not in service.supervisor._failed_starts
