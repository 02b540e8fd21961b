"""Typed settings, read from the environment (prefix FIELDSYNC_) and an optional .env file."""

from __future__ import annotations

import logging
import os
import secrets
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("fieldsync.config")

# HS256 keys shorter than this can be brute-forced from a single token.
MIN_KEY_LENGTH = 32


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
    client_token_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="Lifetime of a client_credentials access token (clients get no refresh token).",
    )

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    sync_max_body_bytes: int = Field(
        default=10 * 1_048_576,
        ge=1024,
        description="Largest sync batch body, counted after gzip inflation (413 beyond).",
    )
    sync_max_records: int = Field(default=500, ge=1, description="Most records in one batch.")
    sync_behind_days: int = Field(
        default=3, ge=1, description="A device that has not synced for longer is `behind`."
    )
    change_retention_days: int = Field(
        default=90,
        ge=1,
        description="How long the change feed keeps delete entries; older cursors get 410.",
    )
    storage_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where photo bytes live: `local` (media_dir) or an S3-compatible object store.",
    )
    media_dir: Path | None = Field(
        default=None, description="Directory of the local photo store; default: data_dir/media."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, Ceph, OSS…); None: AWS."
    )
    s3_bucket: str = "fieldsync"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = Field(default="", description="Prefix of every key in the bucket.")
    upload_max_bytes: int = Field(
        default=64 * 1_048_576,
        ge=1024,
        description="Largest photo accepted, by upload or PUT (413 beyond; tus Tus-Max-Size).",
    )
    photo_max_pixels: int = Field(
        default=50_000_000,
        ge=1,
        description="Most pixels a photo may have: larger ones are refused (413) undecoded.",
    )
    photo_max_decoded_bytes: int = Field(
        default=256 * 1_048_576,
        ge=1_048_576,
        description="Most memory decoding one photo may take (pixels × bytes per pixel; JPEGs "
        "are decoded at reduced size): beyond, 413 undecoded.",
    )
    upload_max_parts: int = Field(
        default=2000,
        ge=1,
        description="Most PATCHes (parts) one upload may take; each is an object and a row.",
    )
    upload_max_unfinished: int = Field(
        default=200, ge=1, description="Most unfinished uploads one user may have (429 beyond)."
    )
    upload_expiry_days: int = Field(
        default=7, ge=1, description="An unfinished upload untouched for this long is deleted."
    )
    upload_cleanup_interval_seconds: int = Field(
        default=3600,
        ge=0,
        description="How often each API process deletes expired uploads; 0: only the CLI does.",
    )
    exif_utc_offset_minutes: int = Field(
        default=8 * 60,
        ge=-14 * 60,
        le=14 * 60,
        description="UTC offset of EXIF capture times that carry none (phones write local time).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed (e.g. 127.0.0.1,10.0.0.0/8). Empty: "
        "none, the connection's own address counts.",
    )
    idle_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="A connection that sends nothing for this long while the server waits for "
        "a request's headers or the rest of its body is closed (slow clients that stop); every "
        "byte restarts the clock. 0: never.",
    )
    shutdown_drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="After SIGTERM, /readyz answers 503 at once and the server goes on serving "
        "for this long before it stops accepting connections: time for a load balancer that "
        "polls /readyz to send new requests elsewhere.",
    )
    shutdown_timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description="After SIGTERM (and the drain), requests in flight get this long to finish; "
        "then they are cancelled, the webhook worker stops and the process exits.",
    )
    cors_allow_origins: list[str] = Field(
        default=["*"], description="Origins browser clients may call from (CORS)."
    )
    visit_cadence_days: int = Field(
        default=30, ge=1, description="A household not visited for longer is `visit_overdue`."
    )
    income_drop_share: float = Field(
        default=0.30,
        gt=0,
        lt=1,
        description="A fall of per-capita income between the two latest snapshots larger than "
        "this share flags `income_drop`.",
    )
    monitoring_rigid_expense_share: float = Field(
        default=0.5,
        gt=0,
        description="Clearing a monitoring case is blocked (`rigid_expenses_unresolved`) while the "
        "latest snapshot's rigid expenses exceed this share of its net income. 0.5: provinces' "
        "identification rules commonly call rigid expenses large above half the net income.",
    )
    village_exit_incidence: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="Poverty incidence below which a village may exit (0.03 in the west).",
    )
    quality_max_per_capita_yuan: int = Field(
        default=200_000,
        gt=0,
        description="income_implausible: a per-capita net income above this (yuan) is a typo.",
    )
    quality_far_from_village_km: float = Field(
        default=5.0,
        gt=0,
        description="visit_far_from_village: a visit further than this from the median "
        "position of the village's other in-person visits.",
    )
    quality_min_other_visits: int = Field(
        default=3,
        ge=1,
        description="visit_far_from_village judges a visit only when its village has at least "
        "this many other positioned in-person visits.",
    )
    report_utc_offset_minutes: int = Field(
        default=8 * 60,
        ge=-14 * 60,
        le=14 * 60,
        description="UTC offset of the times in exports (China Standard Time).",
    )
    export_concurrency: int = Field(
        default=2,
        ge=1,
        description="Exports one API process runs at once; more wait their turn.",
    )
    webhook_worker_enabled: bool = Field(
        default=True,
        description="Each API process delivers webhooks; false: only `fieldsync deliver-webhooks`.",
    )
    webhook_poll_interval_seconds: float = Field(
        default=2.0, gt=0, le=300, description="How often an idle worker looks for events."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Time a receiver has to answer one delivery."
    )
    webhook_concurrency: int = Field(
        default=16, ge=1, le=256, description="Deliveries one worker has in flight at once."
    )
    webhook_retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Wait before the first retry; doubled after each failure (with jitter).",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts."
    )
    webhook_retry_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long a delivery is retried before it is given up (`dead`).",
    )
    webhook_allow_private_addresses: bool = Field(
        default=False,
        description="Let webhooks deliver to loopback and private addresses (tests, intranets).",
    )
    webhook_retention_days: int = Field(
        default=30,
        ge=1,
        description="Finished deliveries (and their events) older than this are deleted by "
        "`fieldsync prune-webhooks`.",
    )
    rate_limit_enabled: bool = Field(
        default=True, description="Answer 429 (with Retry-After) to callers over their limits."
    )
    rate_limit_storage_uri: str = Field(
        default="memory://",
        description="Where rate-limit counters live: `memory://` (each API process counts for "
        "itself) or `redis://host:6379/0` (`rediss://` with TLS), which every instance shares.",
    )
    rate_limit_key_prefix: str = Field(
        default="fieldsync", description="Prefix of the rate-limit keys in Redis."
    )
    rate_limit_client: str = Field(
        default="600/minute",
        description="Requests one API client (client_credentials token) may make, in the "
        "notation of the `limits` library (`10/second;600/minute`); empty: unlimited.",
    )
    rate_limit_user: str = Field(
        default="",
        description="Requests one user (officer, secretary, admin) may make; empty: unlimited "
        "(a phone catching up after days offline sends many at once).",
    )
    rate_limit_token_ip: str = Field(
        default="120/minute",
        description="Requests to the token endpoint from one client address; empty: unlimited.",
    )
    rate_limit_login: str = Field(
        default="20/minute",
        description="Requests to the token endpoint naming one username or client_id (a guard "
        "against password guessing); empty: unlimited.",
    )
    rate_limit_id_search: str = Field(
        default="20/minute;200/day",
        description="Searches by ID number one caller without `pii:read` may make. Each tells "
        "whether a number is registered, and a masked one hides only its birth date: this keeps "
        "guessing it impractical (about 3,300 tries for a century). Empty: unlimited.",
    )
    alert_import_max_bytes: int = Field(
        default=32 * 1_048_576,
        ge=1024,
        description="Largest department alert file (CSV or XLSX) imported at once: 422 "
        "`alert_file_unreadable` (reason `too_large`) beyond. 32 MiB holds ~500,000 CSV rows.",
    )
    household_import_max_bytes: int = Field(
        default=16 * 1_048_576,
        ge=1024,
        description="Largest household register file (.xlsx) imported at once: 413 "
        "`household_file_too_large` (reason `bytes`) beyond.",
    )
    household_import_max_rows: int = Field(
        default=10_000,
        ge=1,
        description="Most data rows (members) of one household import: 413 "
        "`household_file_too_large` (reason `rows`) beyond; a county imports town by town.",
    )
    page_limit_default: int = 100
    page_limit_max: int = 500
    sqlite_busy_timeout_ms: int = 10_000

    @field_validator(
        "rate_limit_client",
        "rate_limit_user",
        "rate_limit_token_ip",
        "rate_limit_login",
        "rate_limit_id_search",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip():
            parse_many(value)  # ValueError: "couldn't parse rate limit string …"
        return value.strip()

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        if value.split("://", 1)[0].lower() not in ("memory", "redis", "rediss"):
            raise ValueError("use memory:// or redis://host:port/db (rediss:// with TLS)")
        return value

    @property
    def effective_media_dir(self) -> Path:
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fieldsync.db').as_posix()}"

    def _key(self, value: SecretStr | None, *, name: str) -> str:
        env_name = f"FIELDSYNC_{name.upper()}"
        if value is not None and value.get_secret_value():
            key = value.get_secret_value()
            if self.environment == "production" and len(key.strip()) < MIN_KEY_LENGTH:
                raise ConfigurationError(
                    f"{env_name} is too short: use at least {MIN_KEY_LENGTH} random characters."
                )
            return key
        if self.environment == "production":
            raise ConfigurationError(
                f"{env_name} must be set in production (a long random string)."
            )
        path = self.data_dir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _create_key_file(path):
            log.warning(
                "%s is not set: generated a development key in %s; "
                "set it explicitly for any shared deployment",
                env_name,
                path,
            )
        key = path.read_text().strip()
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"{path} holds no usable key: delete it to have a new one generated, "
                f"or set {env_name}."
            )
        return key

    @cached_property
    def signing_key(self) -> str:
        """The JWT signing key; in development generated once and kept under data_dir."""
        return self._key(self.secret_key, name="secret_key")

    @cached_property
    def pii_hash_key(self) -> str:
        """The key of the searchable hash of ID numbers (kept apart from the JWT key)."""
        return self._key(self.pii_key, name="pii_key")


def _create_key_file(path: Path) -> bool:
    """Write a new random key to `path`, readable by its owner only; False if it already exists.

    The key is written to a private temporary file and linked into place: the key file is never
    readable by others, and a process starting at the same moment sees either no file or the
    whole key, and never replaces it with a key of its own.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


@lru_cache
def get_settings() -> Settings:
    return Settings()
