"""API clients for tests: registered as a county admin would, with a known secret."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote_plus

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.auth.principal import CLIENT_SCOPES
from app.clients import service
from app.clients.models import ApiClient
from app.core.config import get_settings
from app.core.security import create_access_token, hash_password
from app.users.models import Role, User, UserRegion

API = "/api/v1"
TOKEN_URL = f"{API}/auth/token"
READ_ONLY = tuple(s for s in CLIENT_SCOPES if s != "pii:read")
SECRET = "test-client-secret-" + "z" * 24


@dataclass(frozen=True)
class Registered:
    client: ApiClient
    secret: str

    @property
    def client_id(self) -> str:
        return str(self.client.id)


@lru_cache
def _secret_hash() -> str:
    return hash_password(SECRET)


async def make_client(
    session: AsyncSession,
    *,
    admin: User,
    region: str,
    scopes: tuple[str, ...] = READ_ONLY,
    name: str = "聊城市防返贫监测平台",
    client_id: uuid.UUID | None = None,
) -> Registered:
    """A client `admin` registered for `region`, with the secret SECRET (hashed once per run,
    unlike POST /clients: the rows are those `app.clients.service.create_client` writes)."""
    client_id = client_id or uuid.uuid4()
    user = User(
        username=f"client:{client_id}",
        password_hash=service.NO_PASSWORD,
        role=Role.api_client.value,
        display_name=name,
    )
    session.add(user)
    await session.flush()
    session.add(UserRegion(user_id=user.id, region_code=region))
    family = TokenFamily(user_id=user.id, scope=" ".join(scopes))
    session.add(family)
    await session.flush()
    client = ApiClient(
        id=client_id,
        name=name,
        user_id=user.id,
        region_code=region,
        scopes=list(scopes),
        secret_hash=_secret_hash(),
        token_family_id=family.id,
        created_by=admin.id,
    )
    session.add(client)
    await session.flush()
    return Registered(client, SECRET)


def minted_token(registered: Registered) -> str:
    """An access token as the client_credentials grant issues it (`issue_token`), minted without
    checking the secret again: an Argon2 verification costs a tenth of a second, and the grant
    itself is tested in test_client_credentials."""
    settings = get_settings()
    token, _ = create_access_token(
        settings,
        user_id=registered.client.user_id,
        family_id=registered.client.token_family_id,
        role=Role.api_client.value,
        scope=" ".join(registered.client.scopes),
        minutes=settings.client_token_minutes,
    )
    return token


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: each part form-urlencoded, then HTTP Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def client_token(
    client: httpx.AsyncClient, registered: Registered, **form: str
) -> httpx.Response:
    return await client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", **form},
        headers=basic(registered.client_id, registered.secret),
    )


async def bearer_for(
    client: httpx.AsyncClient, registered: Registered, **form: str
) -> dict[str, str]:
    response = await client_token(client, registered, **form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
