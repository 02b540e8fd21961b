"""A delivery connects to the address its host was checked at, never to a second resolution
of the name (DNS rebinding), while Host, TLS SNI and the certificate check keep the name."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.base import utcnow
from app.webhooks import urls
from app.webhooks.delivery import Claimed, Worker, encode, send
from app.webhooks.models import WebhookDelivery
from app.webhooks.urls import IPAddress
from tests.builders import COUNTY_A, World
from tests.records.bodies import put, visit_body
from tests.webhooks.helpers import Receiver, fast_settings, make_webhook, session_transactions

NAME = "hooks.example.test"  # .test never resolves: only the patched check can know it


class Resolver:
    """The check's resolver answers `addresses` for NAME; the system resolver (what httpx, via
    anyio, would ask if it connected to the name) answers `rebound`, and records being asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.addresses: list[str] = ["127.0.0.1"]
        self.rebound = "127.0.0.1"
        self.asked: list[Any] = []
        system = socket.getaddrinfo

        async def resolve(host: str, port: int) -> list[IPAddress]:
            assert host == NAME
            return [ipaddress.ip_address(a) for a in self.addresses]

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host in (NAME, NAME.encode()):
                self.asked.append(host)
                return system(self.rebound, port, *args, **kwargs)
            return system(host, port, *args, **kwargs)

        monkeypatch.setattr(urls, "resolve", resolve)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    return Resolver(monkeypatch)


def claimed(url: str) -> Claimed:
    now = utcnow()
    return Claimed(
        delivery_id=uuid.uuid4(),
        attempt=1,
        due_at=now,
        lease=now + timedelta(minutes=1),
        url=url,
        secret="whsec_test",
        event_id=1,
        event_type="visit.created",
        body=encode({"id": 1, "type": "visit.created"}),
    )


# --- through the worker ----------------------------------------------------------------------


async def deliver_one_visit(
    client: httpx.AsyncClient, world: World, session: AsyncSession, url: str, **settings: Any
) -> WebhookDelivery:
    hook = await make_webhook(session, owner=world.users["admin_a"], regions=(COUNTY_A,), url=url)
    body = visit_body(world.households["a1"].id)
    response = await put(client, world, "visit", body, who="officer_a1")
    assert response.status_code == 201, response.text
    worker = Worker(session_transactions(session), fast_settings(**settings))
    assert await worker.run_once() == 1
    await session.flush()
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(col(WebhookDelivery.webhook_id) == hook.id)
        .execution_options(populate_existing=True)
    )
    assert delivery is not None
    return delivery


async def test_the_delivery_goes_to_the_checked_address_with_the_name_as_host(
    client: httpx.AsyncClient, world: World, session: AsyncSession, resolver: Resolver
) -> None:
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        delivery = await deliver_one_visit(client, world, session, f"http://{NAME}:{port}/hooks")

    assert delivery.status == "delivered" and delivery.last_status_code == 200
    [received] = receiver.delivered()
    assert received.headers["host"] == f"{NAME}:{port}"
    assert received.event["type"] == "visit.created"
    assert resolver.asked == []  # nobody resolved the name a second time


async def test_a_name_resolving_to_a_private_address_is_refused(
    client: httpx.AsyncClient, world: World, session: AsyncSession, resolver: Resolver
) -> None:
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        delivery = await deliver_one_visit(
            client,
            world,
            session,
            f"http://{NAME}:{port}/hooks",
            webhook_allow_private_addresses=False,
        )

    assert receiver.snapshot() == []
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert delivery.last_error == f"{NAME} resolves to addresses that are not public: ['127.0.0.1']"


# --- the request as sent (no network) --------------------------------------------------------


class Recorded:
    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.requests: list[httpx.Request] = []
        self.refuse = refuse

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host in self.refuse:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(204)


@pytest.mark.parametrize(
    ("url", "host_header"),
    [
        (f"https://{NAME}/fieldsync?a=1", NAME),
        (f"https://{NAME}:8443/fieldsync?a=1", f"{NAME}:8443"),
        (f"http://{NAME}:8080/fieldsync?a=1", f"{NAME}:8080"),
    ],
)
async def test_the_url_names_the_checked_address_and_host_and_sni_keep_the_name(
    resolver: Resolver, url: str, host_header: str
) -> None:
    resolver.addresses = ["2001:4860:4860::8888", "8.8.8.8"]
    resolver.rebound = "127.0.0.1"  # what the name says by the time of connecting
    recorded = Recorded()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorded)) as http:
        outcome = await send(
            http, claimed(url), fast_settings(webhook_allow_private_addresses=False)
        )

    assert outcome.delivered and outcome.status_code == 204
    [request] = recorded.requests
    expected = httpx.URL(url)
    assert request.url.host == "2001:4860:4860::8888"
    assert str(request.url).startswith(f"{expected.scheme}://[2001:4860:4860::8888]")
    assert (request.url.port, request.url.raw_path) == (expected.port, b"/fieldsync?a=1")
    assert request.headers["host"] == host_header
    assert request.headers["connection"] == "close"  # never pooled for another name
    assert request.extensions.get("sni_hostname") == (NAME if expected.scheme == "https" else None)
    assert request.headers["fieldsync-event"] == "visit.created"
    assert resolver.asked == []


async def test_an_address_that_refuses_the_connection_is_followed_by_the_next(
    resolver: Resolver,
) -> None:
    resolver.addresses = ["2001:4860:4860::8888", "8.8.8.8", "8.8.4.4"]
    recorded = Recorded(refuse=("2001:4860:4860::8888",))
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorded)) as http:
        outcome = await send(
            http, claimed(f"https://{NAME}/x"), fast_settings(webhook_allow_private_addresses=False)
        )

    assert outcome.delivered
    assert [r.url.host for r in recorded.requests] == ["2001:4860:4860::8888", "8.8.8.8"]
    assert {r.headers["host"] for r in recorded.requests} == {NAME}


async def test_when_every_address_refuses_the_last_error_is_kept(resolver: Resolver) -> None:
    resolver.addresses = ["8.8.8.8", "8.8.4.4"]
    recorded = Recorded(refuse=("8.8.8.8", "8.8.4.4"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorded)) as http:
        outcome = await send(
            http, claimed(f"https://{NAME}/x"), fast_settings(webhook_allow_private_addresses=False)
        )

    assert not outcome.delivered and outcome.error == "ConnectError: connection refused"
    assert len(recorded.requests) == 2


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://[::1]:8080/hook"])
async def test_a_literal_url_is_sent_as_it_is(resolver: Resolver, url: str) -> None:
    recorded = Recorded()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorded)) as http:
        outcome = await send(http, claimed(url), fast_settings())

    assert outcome.delivered
    [request] = recorded.requests
    assert request.url == httpx.URL(url)
    assert request.headers["host"] == httpx.URL(url).netloc.decode()
    assert request.headers["connection"] == "keep-alive"  # httpx's default: pooled by address
    assert "sni_hostname" not in request.extensions


# --- TLS: the certificate is checked against the name, not the address ----------------------


def certificate_files(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for `name` (DNS name only, no IP address): the CA's
    PEM file, the certificate's and its key's."""
    now = utcnow()

    def build(subject: str, issuer: str, key: Any, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("fieldsync test CA", "fieldsync test CA", ca_key, ca_key, ca=True)
    leaf = build(name, "fieldsync test CA", leaf_key, ca_key, ca=False)
    paths = (tmp / "ca.pem", tmp / "leaf.pem", tmp / "leaf.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class TlsReceiver:
    receiver: Receiver
    ca: str  # the CA's file
    server_names: list[str | None]  # the SNI of each handshake

    @property
    def port(self) -> int:
        return int(self.receiver.server.server_address[1])


@pytest.fixture
def tls_receiver(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TlsReceiver]:
    """A Receiver behind TLS with a certificate for the parametrized name."""
    ca, leaf, key = certificate_files(tmp_path, request.param)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda sslobj, name, ctx: server_names.append(name)
    receiver = Receiver()
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    with receiver:
        yield TlsReceiver(receiver, str(ca), server_names)


@pytest.mark.parametrize("tls_receiver", [NAME], indirect=True)
async def test_https_to_the_address_presents_and_verifies_the_name(
    resolver: Resolver, tls_receiver: TlsReceiver
) -> None:
    port = tls_receiver.port
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=tls_receiver.ca)) as http:
        outcome = await send(http, claimed(f"https://{NAME}:{port}/hooks"), fast_settings())

    assert outcome.delivered, outcome.error
    assert tls_receiver.server_names == [NAME]
    [received] = tls_receiver.receiver.delivered()
    assert received.headers["host"] == f"{NAME}:{port}"
    assert resolver.asked == []


@pytest.mark.parametrize("tls_receiver", ["other.example.test"], indirect=True)
async def test_https_refuses_a_certificate_for_another_name(
    resolver: Resolver, tls_receiver: TlsReceiver
) -> None:
    port = tls_receiver.port
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=tls_receiver.ca)) as http:
        outcome = await send(http, claimed(f"https://{NAME}:{port}/hooks"), fast_settings())

    assert not outcome.delivered and outcome.status_code is None
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert "Hostname mismatch" in outcome.error
    assert tls_receiver.receiver.snapshot() == []
