"""Every forged, expired, tampered or revoked access token gets 401 with a Bearer challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.core.config import get_settings
from app.core.security import ALGORITHM, create_access_token
from app.users.models import User
from tests.builders import World

ME_URL = "/api/v1/me"
PROTECTED = [
    ("GET", ME_URL),
    ("GET", "/api/v1/households"),
    ("GET", "/api/v1/regions"),
]


@pytest.fixture(autouse=True)
async def committed_world(world: World, session: AsyncSession) -> World:
    """Commit the world to the test's outer transaction (still rolled back after the test).

    The app shares the test's session, and a request that fails rolls that session back: without
    this, the first 401 would also roll back the world, and every later request would get its
    401 because the users are gone rather than because of the attack.
    """
    await session.commit()
    return world


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def b64url_decode_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def valid_claims(world: World, who: str = "officer_a1") -> dict[str, Any]:
    """The claims of a world user's genuine token: a forgery starts from these."""
    return jwt.get_unverified_claims(world.tokens[who])


def sign(claims: dict[str, Any], *, key: str | None = None, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, key or get_settings().signing_key, algorithm=algorithm)


@cache
def rsa_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'realm="fieldsync"' in challenge
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 401
    assert problem["code"] == "not_authenticated"
    assert problem["type"].endswith("/not-authenticated")
    assert problem["title"]
    assert problem["retryable"] is False


async def call(
    client: httpx.AsyncClient, world: World, token: str | None, *, scheme: str = "Bearer"
) -> None:
    """The attack fails on every protected route, not only /me, while a genuine token of another
    user still works (so each 401 is the attack's, not a broken fixture's)."""
    headers = {} if token is None else {"Authorization": f"{scheme} {token}".rstrip()}
    for method, url in PROTECTED:
        assert_unauthorized(await client.request(method, url, headers=headers))
    control = await client.get(ME_URL, headers=world.headers("officer_a2"))
    assert control.status_code == 200, control.text


# --- sanity: the forging helpers make tokens the API accepts -------------------------------


async def test_a_properly_signed_token_is_accepted(client: httpx.AsyncClient, world: World) -> None:
    """Guards the tests below: a re-signed copy of genuine claims is accepted, so each of them
    fails for the one thing it changes."""
    token = sign(valid_claims(world))
    for method, url in PROTECTED:
        response = await client.request(method, url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


# --- missing and malformed ------------------------------------------------------------------


async def test_no_token(client: httpx.AsyncClient, world: World) -> None:
    await call(client, world, None)
    response = await client.get(ME_URL)
    # No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
    assert "error=" not in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "x" * 5000,
        "",
    ],
)
async def test_garbage_token(client: httpx.AsyncClient, world: World, token: str) -> None:
    await call(client, world, token)


async def test_invalid_token_challenge_names_the_error(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(ME_URL, headers={"Authorization": "Bearer garbage"})
    assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT"])
async def test_other_authorization_schemes(
    client: httpx.AsyncClient, world: World, scheme: str
) -> None:
    await call(client, world, world.tokens["officer_a1"], scheme=scheme)


async def test_token_in_query_string_is_ignored(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(ME_URL, params={"access_token": world.tokens["officer_a1"]})
    assert_unauthorized(response)


# --- algorithm attacks ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "keep"])
async def test_alg_none(client: httpx.AsyncClient, world: World, alg: str, signature: str) -> None:
    genuine = world.tokens["officer_a1"]
    header = b64url_json({"alg": alg, "typ": "JWT"})
    payload = b64url_json(valid_claims(world, "admin_a"))
    sig = genuine.split(".")[2] if signature == "keep" else ""
    await call(client, world, f"{header}.{payload}.{sig}")


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithm_with_the_right_key(
    client: httpx.AsyncClient, world: World, alg: str
) -> None:
    await call(client, world, sign(valid_claims(world), algorithm=alg))


async def test_rs256_signed_with_an_attackers_key(client: httpx.AsyncClient, world: World) -> None:
    token = jwt.encode(valid_claims(world), rsa_private_pem().decode(), algorithm="RS256")
    await call(client, world, token)


async def test_rs256_header_over_an_hmac_signature(client: httpx.AsyncClient, world: World) -> None:
    """Algorithm confusion: the header claims RS256 while the bytes are an HMAC with the secret."""
    genuine = sign(valid_claims(world))
    header, payload, signature = genuine.split(".")
    forged_header = b64url_json({**b64url_decode_json(header), "alg": "RS256"})
    await call(client, world, f"{forged_header}.{payload}.{signature}")


async def test_hs256_signed_with_the_public_key_of_a_keypair(
    client: httpx.AsyncClient, world: World
) -> None:
    """The classic confusion attack: a public key used as HMAC secret is no key of ours."""
    private = serialization.load_pem_private_key(rsa_private_pem(), password=None)
    public_pem = private.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_json({"alg": "HS256", "typ": "JWT"})
    payload = b64url_json(valid_claims(world))
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    await call(client, world, f"{header}.{payload}.{b64url(mac)}")


# --- signature and claims -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["wrong-key-" + "z" * 40, "", "secret"])
async def test_wrong_key(client: httpx.AsyncClient, world: World, key: str) -> None:
    token = jwt.encode(valid_claims(world), key, algorithm=ALGORITHM)
    await call(client, world, token)


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


CLAIM_ATTACKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "expired": lambda c: {**c, "iat": _now() - 7200, "nbf": _now() - 7200, "exp": _now() - 3600},
    "expired-beyond-leeway": lambda c: {**c, "exp": _now() - 61},
    "not-yet-valid": lambda c: {**c, "nbf": _now() + 3600},
    "wrong-issuer": lambda c: {**c, "iss": "someone-else"},
    "wrong-audience": lambda c: {**c, "aud": "another-api"},
    "audience-list-without-ours": lambda c: {**c, "aud": ["another-api", "third-api"]},
    "no-exp": lambda c: {k: v for k, v in c.items() if k != "exp"},
    "no-iss": lambda c: {k: v for k, v in c.items() if k != "iss"},
    "no-aud": lambda c: {k: v for k, v in c.items() if k != "aud"},
    "no-sub": lambda c: {k: v for k, v in c.items() if k != "sub"},
    "no-sid": lambda c: {k: v for k, v in c.items() if k != "sid"},
    "no-iat": lambda c: {k: v for k, v in c.items() if k != "iat"},
    "sub-not-a-uuid": lambda c: {**c, "sub": "admin"},
    "sid-not-a-uuid": lambda c: {**c, "sid": 42},
    "exp-not-a-number": lambda c: {**c, "exp": "tomorrow"},
    "unknown-user": lambda c: {**c, "sub": str(uuid.uuid4())},
    "unknown-family": lambda c: {**c, "sid": str(uuid.uuid4())},
}


@pytest.mark.parametrize("attack", list(CLAIM_ATTACKS))
async def test_bad_claims_signed_with_the_right_key(
    client: httpx.AsyncClient, world: World, attack: str
) -> None:
    await call(client, world, sign(CLAIM_ATTACKS[attack](valid_claims(world))))


async def test_expiry_within_leeway_is_still_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    """Pins the leeway the expiry tests rely on: 30 s of clock skew are forgiven, no more."""
    token = sign({**valid_claims(world), "exp": _now() - 5})
    response = await client.get(ME_URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


async def test_token_of_one_user_with_the_login_of_another(
    client: httpx.AsyncClient, world: World
) -> None:
    """sub and sid must belong together: a family id lifted from another user's token fails."""
    mine = valid_claims(world, "officer_a1")
    theirs = valid_claims(world, "admin_a")
    await call(client, world, sign({**mine, "sid": theirs["sid"]}))


@pytest.mark.parametrize(
    "change",
    [
        {"role": "county_admin"},
        {"scope": "households:read households:write regions:write users:write pii:read"},
        {"sub": "ADMIN"},
        {"exp": 4102444800},
    ],
    ids=["role", "scope", "sub", "exp"],
)
async def test_tampered_payload_keeping_the_signature(
    client: httpx.AsyncClient, world: World, change: dict[str, Any]
) -> None:
    header, payload, signature = world.tokens["officer_a1"].split(".")
    claims = b64url_decode_json(payload)
    if change.get("sub") == "ADMIN":
        change = {"sub": str(world.users["admin_a"].id)}
    forged = b64url_json({**claims, **change})
    assert forged != payload
    await call(client, world, f"{header}.{forged}.{signature}")


async def test_tampered_signature(client: httpx.AsyncClient, world: World) -> None:
    header, payload, signature = world.tokens["officer_a1"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await call(client, world, f"{header}.{payload}.{flipped}")


# --- tokens whose user or login is gone -----------------------------------------------------


async def test_token_of_a_disabled_user(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    await session.execute(
        update(User).where(User.id == world.users["officer_a1"].id).values(is_active=False)
    )
    await session.commit()
    await call(client, world, world.tokens["officer_a1"])


async def test_token_of_a_deleted_user(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    user_id = world.users["officer_a1"].id
    session.expunge(world.users["officer_a1"])
    await session.execute(delete(User).where(User.id == user_id))
    await session.commit()
    await call(client, world, world.tokens["officer_a1"])


async def test_token_whose_family_was_revoked(
    client: httpx.AsyncClient, world: World, session: AsyncSession
) -> None:
    family_id = uuid.UUID(valid_claims(world, "officer_a1")["sid"])
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id)
        .values(revoked_at=datetime.now(UTC) - timedelta(seconds=1), revoked_reason="test")
    )
    await session.commit()
    await call(client, world, world.tokens["officer_a1"])


async def test_token_issued_for_a_family_created_now_but_never_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    """create_access_token itself does not make a token valid: the login must exist."""
    user = world.users["officer_a1"]
    token, _ = create_access_token(
        get_settings(),
        user_id=user.id,
        family_id=uuid.uuid4(),
        role=user.role,
        scope="households:read",
    )
    await call(client, world, token)
