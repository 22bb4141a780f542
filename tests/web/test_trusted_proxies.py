"""Behind a trusted reverse proxy, failed sign-ins are counted for the client the proxy names, not for the proxy."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from web_support import LiveServer

from postroom.helpdesk.users import ThrottlePolicy


def test_failed_sign_ins_lock_the_forwarded_client_not_everyone_behind_the_proxy(
    live: LiveServer, make_user: Callable[..., int]
) -> None:
    # Few attempts per client address, many per account: the address is what this test watches.
    live.service.users.throttle = ThrottlePolicy(account_failures=100, ip_failures=3)
    for email in ("ann@example.test", "bob@example.test"):
        make_user(email)

    def attempt(client: httpx.Client, forwarded_for: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        csrf = client.get("/login", headers=headers).cookies.get("postroom_csrf") or client.cookies["postroom_csrf"]
        data = {"email": "ann@example.test", "password": "wrong password", "csrf_token": csrf}
        return client.post("/login", data=data, headers=headers).status_code

    with httpx.Client(base_url=live.url) as client:
        # The test server is a proxy on 127.0.0.1, trusted by default (POSTROOM_TRUSTED_PROXIES).
        assert [attempt(client, "203.0.113.7") for _ in range(4)] == [401, 401, 401, 429]
        # Another client behind the same proxy is not locked out by the first one's mistakes.
        assert attempt(client, "198.51.100.20") == 401
