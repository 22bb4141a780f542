"""Integration tests: a real SMTP peer that requires AUTH, as providers do."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from postroom.testing.smtp import SmtpTestServer


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpTestServer]) -> SmtpTestServer:
    """An SMTP server that requires AUTH, like a real provider; connection_body() adds the mailbox's user."""
    return make_smtp_server("plain", auth_required=True)
