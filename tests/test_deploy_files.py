"""deploy/: the compose file and nginx's configuration hold together with the app.

No Docker engine runs the tests: these check what a typo would break at `docker compose up`
(a setting's name, a service named in depends_on, a mounted file) and what nginx must not get
wrong for phones (body limits below the app's, uploads streamed, the proxy trusted).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.middleware import Middleware

from app.core.config import Settings
from app.core.middleware import RequestBodyMiddleware
from app.main import create_app

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = {f"FIELDSYNC_{name.upper()}" for name in Settings.model_fields}
UPLOAD_PATHS = ("/api/v1/uploads", "/api/v1/uploads/3f2a", "/api/v1/photos/" + "ab" * 32)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


# --- nginx.conf -------------------------------------------------------------------------------


class Nginx:
    """The one server block of deploy/nginx.conf: its own directives and its locations."""

    def __init__(self, text: str) -> None:
        text = re.sub(r"#[^\n]*", "", text)
        block = re.compile(r"location\s+(=\s*)?(\S+)\s*\{([^{}]*)\}")
        self.locations = [(bool(eq), path, body) for eq, path, body in block.findall(text)]
        server = text[text.index("server {") :]
        self.server = block.sub("", server)
        self.text = text

    @staticmethod
    def directive(body: str, name: str) -> str | None:
        found = re.findall(rf"(?:^|[;{{\s]){name}\s+([^;]+);", body)
        return found[-1].strip() if found else None

    def location_for(self, path: str) -> str:
        """The body of the location nginx picks for `path` (exact, else longest prefix)."""
        for exact, prefix, body in self.locations:
            if exact and prefix == path:
                return body
        prefixes = [(p, b) for exact, p, b in self.locations if not exact and path.startswith(p)]
        return max(prefixes, key=lambda pb: len(pb[0]))[1]

    def max_body_bytes(self, path: str) -> int:
        size = self.directive(self.location_for(path), "client_max_body_size")
        size = size or self.directive(self.server, "client_max_body_size")
        assert size is not None
        units = {"k": 1024, "m": 1024**2, "g": 1024**3}
        number, unit = re.fullmatch(r"(\d+)([kmg]?)", size.lower()).groups()  # type: ignore[union-attr]
        return int(number) * units.get(unit, 1)


@pytest.fixture(scope="module")
def nginx() -> Nginx:
    return Nginx((DEPLOY / "nginx.conf").read_text(encoding="utf-8"))


# --- the compose file -------------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "redis", "minio", "migrate", "api-1", "api-2", "nginx"} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_every_fieldsync_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    named = {
        var for s in services.values() for var in environment(s) if var.startswith("FIELDSYNC_")
    }
    assert named, "no settings at all?"
    assert named <= SETTINGS, f"not settings of app/core/config.py: {sorted(named - SETTINGS)}"
    for name in ("api-1", "api-2"):
        env = environment(services[name])
        assert env["FIELDSYNC_STORAGE_BACKEND"] == "s3"
        assert env["FIELDSYNC_S3_ENDPOINT_URL"].startswith("http://minio:")
        assert env["FIELDSYNC_RATE_LIMIT_STORAGE_URI"].startswith("redis://redis:")
        assert env["FIELDSYNC_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["FIELDSYNC_DATABASE_URL"]


def test_the_variables_compose_asks_for_are_in_the_example_env_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    asked = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    given = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert asked and asked <= given, sorted(asked - given)


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is missing"
                mounted += 1
    assert mounted >= 1  # nginx.conf


def test_dependencies_exist_and_migrations_run_once_before_the_api(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for other in depends:
            assert other in services, f"{name} depends on {other}, which is no service"
    assert services["migrate"]["entrypoint"] == ["fieldsync", "migrate"]
    for name in ("api-1", "api-2"):
        api = services[name]
        assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        # Not the image's entrypoint, which would migrate again in every replica.
        assert api["entrypoint"] == ["fieldsync", "serve"]
        assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert {d["condition"] for d in services["nginx"]["depends_on"].values()} == {"service_healthy"}


def test_the_api_trusts_x_forwarded_for_from_nginx_only(
    services: dict[str, dict[str, Any]], nginx: Nginx
) -> None:
    nginx_address = services["nginx"]["networks"]["edge"]["ipv4_address"]
    for name in ("api-1", "api-2"):
        assert environment(services[name])["FIELDSYNC_TRUSTED_PROXIES"] == nginx_address
    assert nginx.directive(nginx.text, "proxy_set_header X-Forwarded-For") == "$remote_addr"
    assert "upstream fieldsync_api" in nginx.text
    assert re.search(r"server api-1:8000", nginx.text) and re.search(
        r"server api-2:8000", nginx.text
    )


# --- nginx ------------------------------------------------------------------------------------


def test_uploads_are_streamed_to_the_api_not_buffered(nginx: Nginx) -> None:
    for path in UPLOAD_PATHS:
        assert nginx.directive(nginx.location_for(path), "proxy_request_buffering") == "off", path
    assert nginx.directive(nginx.location_for("/api/v1/households"), "proxy_request_buffering") in (
        None,
        "on",
    )


def _body_limits() -> RequestBodyMiddleware:
    """The app's body limits with the default settings, as its middleware holds them."""
    [entry] = [m for m in create_app().user_middleware if m.cls is RequestBodyMiddleware]
    assert isinstance(entry, Middleware)
    return RequestBodyMiddleware(lambda *_: None, *entry.args, **entry.kwargs)  # type: ignore[arg-type]


def test_nginx_lets_through_every_body_the_app_accepts(nginx: Nginx) -> None:
    limits = _body_limits()
    paths = [
        "/api/v1/households",
        "/api/v1/sync/batches",
        *limits.path_limits,
        *(prefix + "x" for prefix, _ in limits.prefix_limits),
        *UPLOAD_PATHS,
    ]
    for path in paths:
        assert nginx.max_body_bytes(path) >= limits.limit_of(path), path
    # ...and refuses a JSON body the app would refuse anyway.
    assert (
        nginx.max_body_bytes("/api/v1/households")
        == Settings.model_fields["max_body_bytes"].default
    )
    assert (
        nginx.max_body_bytes(UPLOAD_PATHS[0]) == Settings.model_fields["upload_max_bytes"].default
    )


def test_the_api_has_time_to_stop_gracefully(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api-1", "api-2"):
        env = environment(services[name])
        needed = float(env.get("FIELDSYNC_SHUTDOWN_TIMEOUT_SECONDS", 30)) + float(
            env.get("FIELDSYNC_SHUTDOWN_DRAIN_SECONDS", 0)
        )
        grace = re.fullmatch(r"(\d+)s", services[name]["stop_grace_period"])
        assert grace is not None and int(grace.group(1)) > needed + 5, name
