"""Process settings: defaults, validation with the variable named, and that each one reaches its user."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from postroom.errors import InvalidSetting
from postroom.service import Service
from postroom.settings import Settings


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
    with pytest.raises(ValidationError, match="pipeline_workers"):
        Settings()
    monkeypatch.delenv("POSTROOM_PIPELINE_WORKERS")
    monkeypatch.delenv("POSTROOM_HTTP_BIND")
    with pytest.raises(InvalidSetting, match="POSTROOM_SECRET_KEY"):
        Settings(data_dir=tmp_path, secret_key="not-a-key").fernet_key()


def test_the_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.fernet_key()
    assert Settings(data_dir=tmp_path).fernet_key() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert settings.reply_token_key() == Settings(data_dir=tmp_path).reply_token_key()
