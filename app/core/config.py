"""Typed settings, read from the environment (prefix FIELDSYNC_) and an optional .env file."""

from __future__ import annotations

import logging
import secrets
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("fieldsync.config")


class ConfigurationError(RuntimeError):
    """The settings cannot be used to start the service."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDSYNC_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default: SQLite under data_dir."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    secret_key: SecretStr | None = Field(default=None, description="JWT signing key (HS256).")
    pii_key: SecretStr | None = Field(
        default=None, description="Key of the keyed hash that makes ID numbers searchable."
    )
    jwt_issuer: str = "fieldsync"
    jwt_audience: str = "fieldsync-api"
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=60, ge=1, le=366)

    page_limit_default: int = 100
    page_limit_max: int = 500
    sqlite_busy_timeout_ms: int = 10_000

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fieldsync.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def _key(self, value: SecretStr | None, *, name: str) -> str:
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
        if self.environment == "production":
            raise ConfigurationError(
                f"FIELDSYNC_{name.upper()} must be set in production (a long random string)."
            )
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
            log.warning(
                "FIELDSYNC_%s is not set: generated a development key in %s; "
                "set it explicitly for any shared deployment",
                name.upper(),
                path,
            )
        return path.read_text().strip()

    @cached_property
    def signing_key(self) -> str:
        """The JWT signing key; in development generated once and kept under data_dir."""
        return self._key(self.secret_key, name="secret_key")

    @cached_property
    def pii_hash_key(self) -> str:
        """The key of the searchable hash of ID numbers (kept apart from the JWT key)."""
        return self._key(self.pii_key, name="pii_key")


@lru_cache
def get_settings() -> Settings:
    return Settings()
