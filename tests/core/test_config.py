"""The signing and PII keys: required in production, generated once (0600) in development."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.config import ConfigurationError, Settings

STRONG_KEY = "k" * 48


def settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings that ignore the test run's environment and any .env file."""
    values: dict[str, object] = {
        "environment": "development",
        "data_dir": tmp_path / "data",
        "secret_key": None,
        "pii_key": None,
        "database_url": f"sqlite+aiosqlite:///{(tmp_path / 'cfg.db').as_posix()}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


# --- production -----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, SecretStr("")])
def test_production_refuses_without_a_signing_key(tmp_path: Path, secret: SecretStr | None) -> None:
    prod = settings(tmp_path, environment="production", secret_key=secret, pii_key=STRONG_KEY)
    with pytest.raises(ConfigurationError, match="FIELDSYNC_SECRET_KEY"):
        prod.signing_key  # noqa: B018
    # Nothing was generated behind the operator's back.
    assert not (tmp_path / "data" / "secret_key").exists()


def test_production_refuses_without_a_pii_key(tmp_path: Path) -> None:
    prod = settings(tmp_path, environment="production", secret_key=STRONG_KEY)
    with pytest.raises(ConfigurationError, match="FIELDSYNC_PII_KEY"):
        prod.pii_hash_key  # noqa: B018


def test_production_ignores_a_key_file_left_in_data_dir(tmp_path: Path) -> None:
    """A development key lying in ./data is not a production secret."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("d" * 64)
    prod = settings(tmp_path, environment="production", pii_key=STRONG_KEY)
    with pytest.raises(ConfigurationError):
        prod.signing_key  # noqa: B018


@pytest.mark.parametrize("key", ["short", " " * 40])
def test_production_refuses_a_weak_signing_key(tmp_path: Path, key: str) -> None:
    prod = settings(tmp_path, environment="production", secret_key=key, pii_key=STRONG_KEY)
    with pytest.raises(ConfigurationError, match="FIELDSYNC_SECRET_KEY"):
        prod.signing_key  # noqa: B018


def test_production_uses_the_configured_keys(tmp_path: Path) -> None:
    prod = settings(tmp_path, environment="production", secret_key=STRONG_KEY, pii_key="p" * 48)
    assert prod.signing_key == STRONG_KEY
    assert prod.pii_hash_key == "p" * 48
    assert not (tmp_path / "data").exists()


async def test_production_app_does_not_start_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import main

    prod = settings(tmp_path, environment="production", pii_key=STRONG_KEY)
    monkeypatch.setattr(main, "get_settings", lambda: prod)
    app = main.create_app()

    with pytest.raises(ConfigurationError, match="FIELDSYNC_SECRET_KEY"):
        async with app.router.lifespan_context(app):
            pytest.fail("the application started without a signing key")  # pragma: no cover
    assert not hasattr(app.state, "engine")


async def test_production_app_starts_with_its_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterpart of the test above: the lifespan itself works when the keys are set."""
    from app import main

    prod = settings(tmp_path, environment="production", secret_key=STRONG_KEY, pii_key="p" * 48)
    monkeypatch.setattr(main, "get_settings", lambda: prod)
    app = main.create_app()

    async with app.router.lifespan_context(app):
        assert app.state.engine is not None


# --- development ----------------------------------------------------------------------------


def test_development_generates_the_key_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dev = settings(tmp_path)
    key_file = tmp_path / "data" / "secret_key"

    with caplog.at_level(logging.WARNING, logger="fieldsync.config"):
        key = dev.signing_key

    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == key
    assert len(key) >= 32
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "FIELDSYNC_SECRET_KEY" in warnings[0].getMessage()
    assert str(key_file) in warnings[0].getMessage()

    # A restart (a new Settings) reuses the key, so issued tokens stay valid; no new warning.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fieldsync.config"):
        again = settings(tmp_path).signing_key
    assert again == key
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_development_keys_are_random_and_separate(tmp_path: Path) -> None:
    one = settings(tmp_path / "one")
    two = settings(tmp_path / "two")
    assert one.signing_key != two.signing_key
    assert one.signing_key != one.pii_hash_key
    pii_file = tmp_path / "one" / "data" / "pii_key"
    assert stat.S_IMODE(pii_file.stat().st_mode) == 0o600


def test_development_key_file_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created 0600, not written with the umask's 0644 and narrowed afterwards (a window in
    which another local user could read it): with chmod disabled the mode must still be 0600."""
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    previous = os.umask(0o022)
    try:
        settings(tmp_path).signing_key  # noqa: B018
    finally:
        os.umask(previous)
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # No temporary file is left behind next to the key.
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["secret_key"]


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    """Of two processes starting together, the second must use the first one's key."""
    (tmp_path / "data").mkdir()
    existing = "e" * 64
    (tmp_path / "data" / "secret_key").write_text(existing + "\n")
    assert settings(tmp_path).signing_key == existing
    assert (tmp_path / "data" / "secret_key").read_text() == existing + "\n"


def test_explicit_key_wins_in_development(tmp_path: Path) -> None:
    dev = settings(tmp_path, secret_key=STRONG_KEY)
    assert dev.signing_key == STRONG_KEY
    assert not (tmp_path / "data" / "secret_key").exists()


@pytest.mark.parametrize("content", ["", "  \n", "short"])
def test_a_damaged_key_file_is_refused(tmp_path: Path, content: str) -> None:
    """An empty key file (a crash while writing it) must not become an empty HMAC key."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text(content)
    with pytest.raises(ConfigurationError, match="secret_key"):
        settings(tmp_path).signing_key  # noqa: B018


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIELDSYNC_ENVIRONMENT", "production")
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("FIELDSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDSYNC_ACCESS_TOKEN_MINUTES", "15")
    loaded = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded.environment == "production"
    assert loaded.signing_key == STRONG_KEY
    assert loaded.access_token_minutes == 15
    assert loaded.data_dir == tmp_path
