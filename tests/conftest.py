"""Fixtures shared by the whole suite, one section per peer the tests talk to.

1. Certificates and trust — ``certs``; the test CA is the trust store of the session (SSL_CERT_FILE).
2. Dovecot (IMAP, POP3) — ``dovecot`` (one private server per pytest-xdist worker), ``dovecot_user``,
   ``make_dovecot`` (a server of the test's own, to stop or restart), ``oauth_dovecot`` (one that also
   accepts XOAUTH2, asking the local OAuth ``provider``).
3. SMTP (aiosmtpd) — ``make_smtp_server`` (a started server per call, stopped after the test),
   ``smtp_server`` (plain text, no AUTH).

Add the database fixtures as a section of their own below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from postroom.testing.certs import Certificates, make_certificates
from postroom.testing.dovecot import DovecotServer, MailUser, dovecot_version, find_dovecot
from postroom.testing.oauth import OAuthTestServer
from postroom.testing.smtp import SmtpMode, SmtpTestServer

TESTS_DIR = Path(__file__).parent

# 4. Database (SQLite and PostgreSQL) and 5. whole Postroom processes live in modules of their own.
pytest_plugins = ["db_fixtures", "service_fixtures"]


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def pytest_report_header(config: pytest.Config) -> str:
    binary = find_dovecot()
    if binary is not None:
        return f"dovecot: {dovecot_version(binary)} ({binary})"
    consequence = "FAIL (CI=true)" if _ci() else "be SKIPPED"
    return f"dovecot: NOT INSTALLED — every Dovecot test will {consequence}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that use the Dovecot fixtures carry the marker, so that `-m "not dovecot"` works.
    for item in items:
        if {"dovecot", "dovecot_user", "make_dovecot", "oauth_dovecot"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dovecot)


# ── 1. Certificates and trust ──────────────────────────────────────────────────────────────────


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA, a server certificate for loopback it signed, and an untrusted certificate."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session", autouse=True)
def _trust_test_ca(certs: Certificates) -> Iterator[None]:
    # Python's default context (postroom.tls.client_context(validate=True)) reads SSL_CERT_FILE, so
    # validating clients trust the test CA exactly as they would trust a public one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(certs.ca_file))
        yield


# ── 2. Dovecot (IMAP, POP3) ────────────────────────────────────────────────────────────────────


DOVECOT_TEMPLATE = TESTS_DIR / "dovecot" / "dovecot.conf.in"


def _require_dovecot() -> Path:
    binary = find_dovecot()
    if binary is None:
        reason = "DOVECOT IS NOT INSTALLED (apt-get install dovecot-imapd dovecot-pop3d): IMAP/POP3 tests"
        if _ci():
            pytest.fail(f"{reason} cannot run, and CI=true requires them", pytrace=False)
        pytest.skip(f"{reason} SKIPPED")
    return binary


@pytest.fixture(scope="session")
def dovecot(certs: Certificates) -> Iterator[DovecotServer]:
    """One private Dovecot per worker; tests share it and keep apart by using their own users."""
    with DovecotServer(DOVECOT_TEMPLATE, certs, binary=_require_dovecot()) as server:
        yield server


@pytest.fixture
def make_dovecot(certs: Certificates) -> Iterator[Callable[[], DovecotServer]]:
    """Start a Dovecot of the test's own, for tests that stop, restart or reconfigure it."""
    started: list[DovecotServer] = []

    def make() -> DovecotServer:
        server = DovecotServer(DOVECOT_TEMPLATE, certs, binary=_require_dovecot()).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> MailUser:
    """A fresh mailbox user for this test alone."""
    return dovecot.add_user()


@pytest.fixture
def provider() -> Iterator[OAuthTestServer]:
    """A local OAuth provider (token and introspection endpoints); a module may override it (e.g. rotating)."""
    with OAuthTestServer() as server:
        yield server


@pytest.fixture
def oauth_dovecot(certs: Certificates, provider: OAuthTestServer) -> Iterator[DovecotServer]:
    """A Dovecot of the test's own that also accepts XOAUTH2/OAUTHBEARER, asking ``provider`` about every token."""
    introspection = provider.introspection_url
    with DovecotServer(
        DOVECOT_TEMPLATE, certs, binary=_require_dovecot(), oauth2_introspection_url=introspection
    ) as server:
        yield server


# ── 3. SMTP (aiosmtpd) ─────────────────────────────────────────────────────────────────────────


@pytest.fixture
def make_smtp_server(certs: Certificates) -> Iterator[Callable[..., SmtpTestServer]]:
    """Start SMTP servers: ``make_smtp_server("starttls", users={"agent": "pw"})``; stopped after the test."""
    started: list[SmtpTestServer] = []

    def make(mode: SmtpMode = "plain", **options: Any) -> SmtpTestServer:
        server = SmtpTestServer(mode=mode, certs=certs, **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(make_smtp_server: Callable[..., SmtpTestServer]) -> SmtpTestServer:
    """A plain-text SMTP server without AUTH."""
    return make_smtp_server("plain")
