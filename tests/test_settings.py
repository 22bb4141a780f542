"""Process settings: defaults, validation with the variable named, and that each one reaches its user."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from postroom.errors import InvalidSetting
from postroom.service import Service
from postroom.settings import Settings
from postroom.sources.smtp_listener import SessionLimits
from postroom.testing.certs import Certificates
from support import free_port


def test_defaults_are_the_embedded_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path("postroom-data")
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'postroom-data' / 'postroom.db').resolve()}"
    assert settings.attachments_dir == Path("postroom-data") / "attachments"
    assert settings.http_host_port == ("127.0.0.1", 8025)


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("POSTROOM_HTTP_BIND", "0.0.0.0:9000")
    monkeypatch.setenv("POSTROOM_OUTBOX_POLL_SECONDS", "0.25")
    monkeypatch.setenv("POSTROOM_LEASE_SECONDS", "12")
    monkeypatch.setenv("POSTROOM_PIPELINE_WORKERS", "3")
    settings = Settings()
    assert settings.http_host_port == ("0.0.0.0", 9000)
    service = Service(settings)
    try:
        assert service.outbox.limits.poll_seconds == 0.25
        assert service.supervisor.policy.lease_seconds == 12
        assert service.pipeline.workers == 3
        assert service.settings.attachments_dir == tmp_path / "d" / "attachments"
    finally:
        service.close()


def test_bad_values_are_refused_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_HTTP_BIND", "nowhere")
    with pytest.raises(InvalidSetting, match="POSTROOM_HTTP_BIND"):
        Settings()
    monkeypatch.setenv("POSTROOM_HTTP_BIND", "127.0.0.1:8025")
    monkeypatch.setenv("POSTROOM_PIPELINE_WORKERS", "0")
    with pytest.raises(
        InvalidSetting, match=r"^POSTROOM_PIPELINE_WORKERS: should be greater than or equal to 1, got '0'$"
    ):
        Settings()
    monkeypatch.delenv("POSTROOM_PIPELINE_WORKERS")
    monkeypatch.delenv("POSTROOM_HTTP_BIND")
    with pytest.raises(InvalidSetting, match="POSTROOM_SECRET_KEY"):
        Settings(data_dir=tmp_path, secret_key="not-a-key").fernet_key()


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("POSTROOM_SMTP_REQUIRE_TLS", "maybe", "expected true or false (also 1/0, yes/no, on/off), got 'maybe'"),
        ("POSTROOM_SMTP_MAX_SESSIONS", "many", "expected a whole number, got 'many'"),
        ("POSTROOM_OUTBOX_POLL_SECONDS", "soon", "expected a number, got 'soon'"),
        ("POSTROOM_LOG_LEVEL", "loud", "must be DEBUG, INFO, WARNING or ERROR, got 'loud'"),
        ("POSTROOM_INBOUND_DOMAIN", "new.example, not a domain", "'not a domain' is not a domain name"),
        ("POSTROOM_INBOUND_DOMAIN", "inbound.example:25", "'inbound.example:25' is not a domain name"),
        ("POSTROOM_INBOUND_DOMAIN", " , ", "needs a domain name"),
        ("POSTROOM_SMTP_HOSTNAME", "mx example", "'mx example' is not a host name"),
    ],
)
def test_typed_settings_are_refused_in_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, error: str
) -> None:
    # QA: a bad boolean gave pydantic's multi-line error naming the field smtp_require_tls.
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidSetting) as caught:
        Settings()
    assert str(caught.value) == f"{variable}: {error}"
    assert caught.value.field == variable


def test_serve_names_the_variable_of_a_bad_boolean_in_one_line(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")},
        "POSTROOM_DATA_DIR": str(tmp_path / "data"),
        "POSTROOM_SMTP_REQUIRE_TLS": "maybe",
    }
    command = [sys.executable, "-c", "from postroom.cli import main; main()", "serve"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: invalid setting: POSTROOM_SMTP_REQUIRE_TLS:"
        " expected true or false (also 1/0, yes/no, on/off), got 'maybe'"
    ]


def test_several_inbound_domains_the_first_shows_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_INBOUND_DOMAIN", " Inbound.New.example., inbound.old.example,inbound.new.example")
    settings = Settings()
    assert settings.inbound_domain == "inbound.new.example"
    assert settings.inbound_domains == ("inbound.new.example", "inbound.old.example")
    # One domain works as it always did.
    monkeypatch.setenv("POSTROOM_INBOUND_DOMAIN", "Inbound.example.")
    assert (Settings().inbound_domain, Settings().inbound_domains) == ("inbound.example", ("inbound.example",))
    monkeypatch.delenv("POSTROOM_INBOUND_DOMAIN")
    assert (Settings().inbound_domain, Settings().inbound_domains) == ("localhost", ("localhost",))


def test_the_listener_hostname_is_the_setting_or_the_machines_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_SMTP_HOSTNAME", "MX.Example.com.")
    assert Settings().listener_hostname() == "MX.Example.com"
    monkeypatch.delenv("POSTROOM_SMTP_HOSTNAME")
    name = Settings().listener_hostname()
    # The fully qualified name when the machine has one, else its plain host name.
    assert name == socket.gethostname() or "." in name


def test_the_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.fernet_key()
    assert Settings(data_dir=tmp_path).fernet_key() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert settings.reply_token_key() == Settings(data_dir=tmp_path).reply_token_key()


# ── the SMTP listener's TLS and limits ────────────────────────────────────────────────────────


def test_listener_defaults_offer_no_tls_and_documented_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert (settings.smtp_tls_cert, settings.smtp_tls_key, settings.smtp_require_tls) == (None, None, False)
    assert (settings.smtp_max_sessions, settings.smtp_max_sessions_per_ip) == (100, 20)
    assert settings.smtp_tls_context() is None
    assert SessionLimits() == SessionLimits(max_sessions=100, max_sessions_per_ip=20)


def test_listener_settings_reach_the_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certs: Certificates
) -> None:
    monkeypatch.setenv("POSTROOM_SMTP_BIND", "127.0.0.1:0")
    monkeypatch.setenv("POSTROOM_SMTP_TLS_CERT", str(certs.cert_file))
    monkeypatch.setenv("POSTROOM_SMTP_TLS_KEY", str(certs.key_file))
    monkeypatch.setenv("POSTROOM_SMTP_REQUIRE_TLS", "true")
    monkeypatch.setenv("POSTROOM_SMTP_MAX_SESSIONS", "7")
    monkeypatch.setenv("POSTROOM_SMTP_MAX_SESSIONS_PER_IP", "3")
    service = Service(Settings(data_dir=tmp_path))
    try:
        listener = service.start_listener()
        assert listener is not None
        assert listener.limits == SessionLimits(max_sessions=7, max_sessions_per_ip=3)
        assert listener.handler.domains == ("localhost",)  # POSTROOM_INBOUND_DOMAIN's postmaster
    finally:
        service.close()


def test_tls_files_come_in_pairs_and_required_tls_needs_them(tmp_path: Path, certs: Certificates) -> None:
    with pytest.raises(InvalidSetting, match="POSTROOM_SMTP_TLS_KEY: must be set together with POSTROOM_SMTP_TLS_CERT"):
        Settings(data_dir=tmp_path, smtp_tls_cert=certs.cert_file)
    with pytest.raises(InvalidSetting, match="POSTROOM_SMTP_TLS_CERT: must be set together with POSTROOM_SMTP_TLS_KEY"):
        Settings(data_dir=tmp_path, smtp_tls_key=certs.key_file)
    with pytest.raises(InvalidSetting, match="POSTROOM_SMTP_REQUIRE_TLS: needs POSTROOM_SMTP_TLS_CERT"):
        Settings(data_dir=tmp_path, smtp_require_tls=True)
    # An exported but empty variable is "not set".
    assert Settings(data_dir=tmp_path, smtp_tls_cert="", smtp_tls_key=" ").smtp_tls_context() is None


def test_a_good_pair_gives_a_server_context_also_from_one_combined_file(tmp_path: Path, certs: Certificates) -> None:
    context = Settings(data_dir=tmp_path, smtp_tls_cert=certs.cert_file, smtp_tls_key=certs.key_file).smtp_tls_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    combined = tmp_path / "combined.pem"
    combined.write_bytes(certs.key_file.read_bytes() + certs.cert_file.read_bytes() + certs.ca_file.read_bytes())
    assert Settings(data_dir=tmp_path, smtp_tls_cert=combined, smtp_tls_key=combined).smtp_tls_context() is not None


@pytest.mark.parametrize(
    ("cert", "key", "error"),
    [
        ("missing.pem", "key", r"POSTROOM_SMTP_TLS_CERT: cannot read .*missing\.pem: No such file or directory"),
        ("cert", "missing.key", r"POSTROOM_SMTP_TLS_KEY: cannot read .*missing\.key: No such file or directory"),
        (".", "key", r"POSTROOM_SMTP_TLS_CERT: cannot read .*: Is a directory"),
        ("garbage", "key", r"POSTROOM_SMTP_TLS_CERT: .*garbage: no PEM certificate in it"),
        ("cert", "cert", r"POSTROOM_SMTP_TLS_KEY: .*server\.pem: no usable PEM private key in it"),
        ("cert", "untrusted_key", r"POSTROOM_SMTP_TLS_KEY: .*untrusted\.key is not the key of the certificate in "),
    ],
)
def test_unusable_tls_files_are_refused_naming_the_setting(
    tmp_path: Path, certs: Certificates, cert: str, key: str, error: str
) -> None:
    (tmp_path / "garbage").write_text("not a certificate\n")
    files = {
        "cert": certs.cert_file,
        "key": certs.key_file,
        "untrusted_key": certs.untrusted_key_file,
        "garbage": tmp_path / "garbage",
        ".": tmp_path,
    }
    settings = Settings(
        data_dir=tmp_path, smtp_tls_cert=files.get(cert, tmp_path / cert), smtp_tls_key=files.get(key, tmp_path / key)
    )
    with pytest.raises(InvalidSetting, match=error):
        settings.smtp_tls_context()


def test_serve_stops_with_a_one_line_error_when_the_tls_files_are_unusable(tmp_path: Path, certs: Certificates) -> None:
    # The real command in a process of its own, as an admin runs it (its logging setup stays out of ours).
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")},
        "POSTROOM_DATA_DIR": str(tmp_path / "data"),
        "POSTROOM_HTTP_BIND": f"127.0.0.1:{free_port()}",  # never bound: serve stops before the API
        "POSTROOM_SMTP_BIND": "127.0.0.1:0",
        "POSTROOM_SMTP_TLS_CERT": str(tmp_path / "absent.pem"),
        "POSTROOM_SMTP_TLS_KEY": str(certs.key_file),
    }
    command = [sys.executable, "-c", "from postroom.cli import main; main()", "serve"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 2, result.stderr
    # One error line (the first start's schema migration narrates above it).
    [line] = [text for text in result.stderr.splitlines() if text.startswith("error")]
    assert result.stderr.rstrip().endswith(line)
    assert line.startswith("error: invalid setting: POSTROOM_SMTP_TLS_CERT: cannot read ")
    assert line.endswith("absent.pem: No such file or directory")
    assert "listening" not in result.stdout
