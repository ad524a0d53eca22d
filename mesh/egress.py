"""The egress guard against server-side request forgery (OWASP SSRF guidance): the
connector's calls to partners' back-ends and identity's back-channel logout tokens.

Every target host is resolved and each of its addresses must be globally routable
(no loopback, private, shared, link-local, multicast, reserved or unspecified
address, IPv4-mapped, well-known NAT64 and 6to4 forms unwrapped first), unless the
ecosystem's operator allow-listed the network, or one port of an address
(``127.0.0.1:9201``, ``[::1]:9201``). An IPv6 address must moreover be global
unicast (``2000::/3``): Python's ``ipaddress`` calls IPv4-compatible (``::a.b.c.d``),
IPv4-translated (``::ffff:0:a.b.c.d``), local-use NAT64 (``64:ff9b:1::/48``, whose
embedding varies) and site-local (``fec0::/10``) addresses global, yet they reach
whatever IPv4 host or site network they embed or name. Teredo (``2001::/32``) and the
returned 6bone range (``3ffe::/16``) are refused as well. Cloud metadata addresses are
refused always. The check runs when a back-end is registered, before every request and every
redirect hop, and again at connect time (:class:`GuardedBackend`), where the
socket is opened to the very address that was checked (no DNS rebinding window).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA: frozenset[IP] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NOT_PUBLIC_V6 = tuple(ipaddress.ip_network(n) for n in ("2001::/32", "3ffe::/16"))


class EgressRefused(Exception):
    """The target is not a place back-end calls may go."""


class Unresolvable(EgressRefused):
    """The host has no address (yet): refused for calls, tolerated at registration."""


@dataclass(frozen=True)
class Network:
    """An allow-list entry: a network (CIDR or one address), optionally one port of it."""

    net: Net
    port: int | None = None

    @property
    def version(self) -> int:
        return self.net.version

    def admits(self, ip: IP, port: int | None) -> bool:
        return (
            ip.version == self.net.version
            and ip in self.net
            and (self.port is None or self.port == port)
        )

    def __str__(self) -> str:
        if self.port is None:
            return str(self.net)
        one = self.net.prefixlen == self.net.max_prefixlen
        where = str(self.net.network_address) if one else str(self.net)
        return f"[{where}]:{self.port}" if self.net.version == 6 else f"{where}:{self.port}"


def parse_network(entry: str) -> Network:
    """``10.0.0.0/8``, ``127.0.0.1``, ``127.0.0.1:9201``, ``[::1]:9201`` or ``::1``."""
    text, port = entry.strip(), None
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r} is not an address, network or address:port")
        text, port = inner, rest[1:] if rest else None
    elif text.count(":") == 1:
        text, port = text.split(":")
    number: int | None = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} has no valid port")
        number = int(port)
    return Network(ipaddress.ip_network(text, strict=False), number)


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Allow-list entries (see :func:`parse_network`); raises ValueError on anything else."""
    return [parse_network(e) for e in entries]


def unwrap(ip: IP) -> IP:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def refusal(ip: IP, allowed: list[Network], port: int | None = None) -> str | None:
    """Why ``ip`` (on ``port``) may not be called, or None."""
    plain = unwrap(ip)
    if plain in METADATA or ip in METADATA:
        return f"{plain} is a cloud metadata address"
    if any(entry.admits(plain, port) for entry in allowed):
        return None
    if isinstance(plain, ipaddress.IPv6Address) and (
        plain not in _GLOBAL_UNICAST or any(plain in net for net in _NOT_PUBLIC_V6)
    ):
        return f"{plain} is not a public address (IPv6 outside global unicast, or an embedding)"
    if plain.is_global and not plain.is_multicast:
        return None
    where = f"{plain} port {port}" if port is not None else str(plain)
    return f"{where} is not a public address (loopback, private or link-local) nor allow-listed"


async def resolve(host: str, port: int) -> list[IP]:
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise Unresolvable(f"cannot resolve {host!r}") from None
    found: list[IP] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise Unresolvable(f"{host!r} has no address")
    return found


async def checked_addresses(host: str, port: int, allowed: list[Network]) -> list[IP]:
    """Resolve ``host``; refuse when any of its addresses is refused."""
    ips = await resolve(host, port)
    for ip in ips:
        why = refusal(ip, allowed, port)
        if why:
            raise EgressRefused(f"{host} resolves to {why}")
    return ips


async def check_url(url: str, allowed: list[Network]) -> None:
    from httpx import URL, InvalidURL

    try:
        parsed = URL(url)
    except InvalidURL as exc:
        raise EgressRefused(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise EgressRefused("only http and https back-ends are supported")
    if parsed.userinfo:
        raise EgressRefused("credentials in URLs are not accepted")
    if not parsed.host:
        raise EgressRefused("the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    await checked_addresses(parsed.host, port, allowed)


class GuardedBackend(AsyncNetworkBackend):
    """httpcore network backend that connects only to checked addresses."""

    def __init__(self, allowed: Callable[[], list[Network]]) -> None:
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> AsyncNetworkStream:
        try:
            ips = await checked_addresses(host, port, self._allowed())
        except EgressRefused as exc:
            raise httpcore.ConnectError(f"egress refused: {exc}") from None
        last: Exception | None = None
        for ip in ips:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not back-ends")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
