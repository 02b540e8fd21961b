"""Which URLs webhooks may deliver to (SSRF)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import pytest

from app.webhooks import urls
from app.webhooks.urls import IPAddress, RefusedAddress, check_destination, check_url

ACCEPTED = [
    "https://hooks.example.com/fieldsync",
    "http://hooks.example.com:8080/a/b?c=d",
    "https://8.8.8.8/hook",
    "https://[2001:4860:4860::8888]/hook",
]
REFUSED_ALWAYS = [
    ("ftp://hooks.example.com/x", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("https:///no-host", "no host"),
    ("https://user:pass@hooks.example.com/", "credentials"),
    ("https://hooks.example.com/#frag", "fragment"),
    ("https://hooks.example.com:99999/", "not a valid URL"),
    ("https://hooks.example.com/a b", "percent-encoded"),
    ("https://例子.测试/", "percent-encoded"),
    ("https://hooks.example.com:0/", "port 0"),
]
PRIVATE = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    # IPv6 addresses that carry a private IPv4 address (issue 17): NAT64, local-use NAT64,
    # 6to4 and IPv4-compatible.
    "http://[64:ff9b::7f00:1]/hook",  # 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # 169.254.169.254
    "http://[64:ff9b:1:a00:1:200::]/hook",  # 10.0.1.2 around the u-octet
    "http://[2002:a00:1::1]/hook",  # 10.0.0.1
    "http://[2002:c0a8:10a::]/hook",  # 192.168.1.10
    "http://[::a00:1]/hook",  # 10.0.0.1
    "http://[::7f00:1]/hook",  # 127.0.0.1
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(("url", "why"), REFUSED_ALWAYS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_other_schemes_credentials_and_malformed_urls_are_refused(
    url: str, why: str, allow_private: bool
) -> None:
    with pytest.raises(ValueError, match=why):
        check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_and_local_addresses_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ValueError, match=r"public address|local name"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x", "http://[::1]/x", "http://localhost/x"])
async def test_deliveries_resolve_the_host_and_refuse_private_addresses(url: str) -> None:
    with pytest.raises(RefusedAddress, match="not public"):
        await check_destination(url, allow_private=False)
    await check_destination(url, allow_private=True)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(RefusedAddress, match="cannot resolve"):
        await check_destination("https://no-such-host.invalid/x", allow_private=False)


def resolving_to(*addresses: str) -> Callable[[str, int], Awaitable[list[IPAddress]]]:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        assert host == "hooks.example.test"
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


async def test_the_checked_addresses_are_returned_in_the_resolvers_order_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v6 = "2001:4860:4860::8888"
    monkeypatch.setattr(urls, "resolve", resolving_to(v6, "8.8.4.4", v6))
    assert await check_destination("https://hooks.example.test/x", allow_private=False) == [
        ipaddress.ip_address(v6),
        ipaddress.ip_address("8.8.4.4"),
    ]


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(urls, "resolve", resolving_to("8.8.8.8", "10.0.0.7"))
    with pytest.raises(RefusedAddress, match=r"not public: \['10.0.0.7'\]"):
        await check_destination("https://hooks.example.test/x", allow_private=False)
    assert await check_destination("https://hooks.example.test/x", allow_private=True) == [
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("10.0.0.7"),
    ]


async def test_a_name_resolving_to_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urls, "resolve", resolving_to())
    with pytest.raises(RefusedAddress, match="no address"):
        await check_destination("https://hooks.example.test/x", allow_private=True)


@pytest.mark.parametrize(
    ("url", "address"), [("https://8.8.8.8/hook", "8.8.8.8"), ("http://[::1]:81/", "::1")]
)
async def test_a_literal_is_its_own_address_without_resolving(
    monkeypatch: pytest.MonkeyPatch, url: str, address: str
) -> None:
    monkeypatch.setattr(urls, "resolve", resolving_to())  # asserts the host is not a literal
    allow_private = address == "::1"
    assert await check_destination(url, allow_private=allow_private) == [
        ipaddress.ip_address(address)
    ]


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("64:ff9b::808:808", "8.8.8.8"),
        ("64:ff9b:1:a00:1:200::", "10.0.1.2"),
        ("2002:808:808::1", "8.8.8.8"),
        ("::ffff:808:808", "8.8.8.8"),
        ("::808:808", "8.8.8.8"),
        ("2001:db8::1", None),
        ("::1", None),
    ],
)
def test_an_ipv6_address_is_judged_by_the_ipv4_address_it_carries(
    address: str, carried: str | None
) -> None:
    import ipaddress

    from app.webhooks.urls import embedded_ipv4

    found = embedded_ipv4(ipaddress.IPv6Address(address))
    assert (str(found) if found else None) == carried


def test_a_nat64_address_of_a_public_host_is_accepted() -> None:
    assert check_url("https://[64:ff9b::808:808]/hook", allow_private=False)
