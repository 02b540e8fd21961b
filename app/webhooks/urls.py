"""Where deliveries may go: http(s) URLs, and (unless allowed) no private or local addresses.

A webhook URL makes the server send requests on the creator's behalf (SSRF). So only http and
https, no credentials in the URL, and by default only public addresses: an IP literal is
checked when the webhook is created, a host name each time a delivery is sent (after
resolving it; every address it resolves to must be public). Loopback and private networks
are allowed with FIELDSYNC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES (tests; receivers on an intranet).

The delivery then connects to an address checked here, never to the name: resolving it again
could give another answer (DNS rebinding: a TTL-0 name alternating between a public and an
internal address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from app.core.i18n import Text

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(Exception):
    """The URL's host is (or resolves to) an address deliveries may not go to."""


# IPv6 prefixes whose addresses carry an IPv4 address (RFC 6052 NAT64, RFC 3056 6to4,
# RFC 4291 IPv4-compatible and -mapped): such an address reaches the IPv4 host it names.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of those that carry one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(packed[12:])
    if address in _NAT64_LOCAL:  # a /48 prefix: the IPv4 octets around the u-octet (bits 64-71)
        return ipaddress.IPv4Address(packed[6:8] + packed[9:11])
    return None


def _public(address: IPAddress) -> bool:
    """Judged by the IPv4 address it carries, for an IPv6 address that carries one."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            return _public(carried)
    return address.is_global and not address.is_multicast


def ip_literal(host: str) -> IPAddress | None:
    """The address, if `host` is an IP literal (IPv6 without brackets)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if deliveries may go to it; ValueError saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(Text("at most {most} characters", most=MAX_URL_LENGTH))
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(Text("spaces, control and non-ASCII characters must be percent-encoded"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(Text("not a valid URL: {exc}", exc=exc)) from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(Text("the scheme must be http or https"))
    if not parts.hostname:
        raise ValueError(Text("the URL names no host"))
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            Text("credentials in the URL are not accepted: verify the signature instead")
        )
    if parts.fragment:
        raise ValueError(Text("a fragment is never sent: leave it out"))
    if port == 0:
        raise ValueError(Text("port 0 cannot be connected to"))
    if not allow_private:
        host = parts.hostname.rstrip(".").lower()
        address = ip_literal(host)
        if address is not None and not _public(address):
            raise ValueError(Text("{host} is not a public address", host=host))
        if host == "localhost" or host.endswith(".localhost"):
            raise ValueError(Text("{host} is a local name", host=host))
    return url


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, the resolver's preferred first (OSError if it fails)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_destination(url: str, *, allow_private: bool) -> list[IPAddress]:
    """Resolve the URL's host now; the addresses to connect to, or RefusedAddress if any is
    not public (unless private ones are allowed) or there is none.

    Checked right before each delivery, so that a name re-pointed at an internal address after
    the webhook was created is refused too; the delivery must connect to one of the addresses
    returned, not resolve the name again.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = list(dict.fromkeys(await resolve(host, _default_port(parts))))
        except OSError as exc:
            raise RefusedAddress(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise RefusedAddress(f"{host} resolves to no address")
    if not allow_private:
        refused = sorted(str(a) for a in addresses if not _public(a))
        if refused:
            raise RefusedAddress(f"{host} resolves to addresses that are not public: {refused}")
    return addresses
