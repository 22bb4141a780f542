"""The test harness itself: users stay apart, servers stop cleanly, certificates and scripts behave."""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from postroom.sources.base import FetchedMail, ImapCursor
from postroom.testing.certs import Certificates
from postroom.testing.dovecot import DovecotServer
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemorySink
from postroom.testing.smtp import SmtpTestServer
from postroom.tls import client_context


def live_processes_in_group(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies waiting for PID 1 do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid_part, rest = stat.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = rest.split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(pid_part.split(" (")[0]))
    return alive


def test_users_do_not_see_each_others_mail(dovecot: DovecotServer) -> None:
    first, second = dovecot.add_user(), dovecot.add_user()

    uid = dovecot.append(first, make_mail("for the first"))

    assert dovecot.flags(first) == {uid: frozenset()}
    assert dovecot.flags(second) == {}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process groups from /proc")
def test_stop_leaves_no_process_and_restart_keeps_mail_and_ports(make_dovecot: Callable[[], DovecotServer]) -> None:
    server = make_dovecot()
    user = server.add_user()
    uid = server.append(user, make_mail())
    ports = server.ports
    with server.imap(user, "INBOX") as client:
        client.idle()
        pgid = server.pid
        assert pgid is not None and len(live_processes_in_group(pgid)) > 3

        server.stop()

        assert live_processes_in_group(pgid) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, ports.imap), timeout=1).close()

    server.start()

    assert server.ports == ports
    assert server.flags(user) == {uid: frozenset()}


def test_untrusted_address_presents_the_other_certificate(dovecot: DovecotServer, certs: Certificates) -> None:
    trusted = _peer_certificate(dovecot.host, dovecot.ports.imaps)
    untrusted = _peer_certificate(dovecot.untrusted_host, dovecot.ports.imaps)

    ca = x509.load_pem_x509_certificate(certs.ca_file.read_bytes())
    assert trusted.issuer == ca.subject
    assert untrusted.issuer == untrusted.subject != ca.subject


def test_pop3_serves_the_same_mailbox_with_stls(dovecot: DovecotServer) -> None:
    user = dovecot.add_user()
    dovecot.append_all(user, [make_mail("one"), make_mail("two")])

    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=5)
    try:
        pop.stls(client_context(validate=True))
        pop.user(user.name)
        pop.pass_(user.password)
        count, _size = pop.stat()
    finally:
        pop.quit()

    assert count == 2


def test_failed_logins_can_be_read_from_the_log(dovecot: DovecotServer) -> None:
    user = dovecot.add_user()
    mark = len(dovecot.log_text())

    with pytest.raises(Exception, match="AUTHENTICATIONFAILED"), dovecot.imap(replace(user, password="wrong")):
        pass

    assert user.name in dovecot.wait_for_log("Password mismatch", after=mark)


def test_smtp_server_wait_for_fails_fast_and_reset_clears_scripts(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next_data(3)
    smtp_server.refuse_recipient("ada@customer.example")
    smtp_server.reset()

    with pytest.raises(TimeoutError, match="expected 1 messages"):
        smtp_server.wait_for(1, timeout=0.05)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        refused = client.sendmail("support@postroom.test", ["ada@customer.example"], make_mail())
    assert refused == {}
    assert smtp_server.wait_for(1)[0].recipients == ("ada@customer.example",)


def test_memory_sink_deduplicates_like_the_raw_store() -> None:
    sink = MemorySink()
    same_id = make_mail("first", message_id="one@example")
    again = make_mail("again", message_id="one@example")
    anonymous = make_mail("anonymous", with_message_id=False)
    cursor = ImapCursor(7, 4)

    new = sink.store(
        [FetchedMail(1, same_id), FetchedMail(2, again), FetchedMail(3, anonymous), FetchedMail(4, anonymous)],
        cursor,
    )

    assert new == 2
    assert [m.uid for m in sink.stored] == [1, 3]
    assert len(sink.handed) == 4
    assert sink.known_message_ids(["one@example", "two@example"]) == {"one@example"}
    assert sink.load_cursor() == cursor


def _peer_certificate(host: str, port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)
