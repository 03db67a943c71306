"""Every connection this node opens to another machine, and the addresses it may open one to.

The addresses a node connects to come from outside: a URL an administrator types for a partner's card, the
``base_url`` a partner's card names for deliveries and revocations. Connecting wherever they point would let
them turn the node against its own network (server-side request forgery): a cloud metadata service at
169.254.169.254, an admin page on 10.0.0.1, a database on 127.0.0.1. So a node connects only to **public**
addresses. It refuses loopback, private (RFC 1918, and 100.64.0.0/10), link-local, unique-local (fc00::/7),
multicast, unspecified (0.0.0.0, ::), broadcast, reserved and documentation addresses, also when they are
written another way (``127.1``, ``2130706433``, ``[::ffff:127.0.0.1]``, 6to4 and NAT64 forms).

The check is made on what is actually connected to, not on the URL's text: the host name is resolved here,
every address is checked, the socket connects to a checked address (a second DNS answer cannot switch it),
and the connected socket's peer address is checked again. Redirects are never followed.

Two settings in ``node.toml`` widen it, and ``ccm-node init`` writes neither: ``[network] allow_loopback =
true`` for a network of nodes on one machine (the demo and the tests), ``[network] allow_networks = [...]``
for private networks partners are really reached on (a VPN between offices).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import NodeConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(OSError):
    """The host resolves to no address this node may connect to; ``reason`` says what the address is."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} is {address}, a {reason} address: this node does not connect to it")
        self.host = host
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound connections may go to beyond public ones (module docstring)."""

    allow_loopback: bool = False
    allow_networks: tuple[Network, ...] = field(default=())

    @classmethod
    def from_config(cls, config: NodeConfig) -> OutboundPolicy:
        return cls(config.allow_loopback, tuple(ipaddress.ip_network(n, strict=False) for n in config.allow_networks))

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` may not be connected to (``"loopback"``, ``"private"``, ...), or None if it may."""
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return self.refusal(embedded)
        if any(address in network for network in self.allow_networks):
            return None
        if address.is_loopback:
            return None if self.allow_loopback else "loopback"
        for reason, test in (("unspecified", address.is_unspecified), ("link-local", address.is_link_local),
                             ("multicast", address.is_multicast), ("reserved", address.is_reserved),
                             ("private", address.is_private)):
            if test:
                return reason
        return None if address.is_global else "non-public"


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def allowed_addresses(host: str, port: int, policy: OutboundPolicy) -> list[tuple[socket.AddressFamily, str]]:
    """Resolve ``host`` and keep the addresses ``policy`` allows, in the resolver's order.

    Raises:
        AddressRefused: none is allowed (naming the first address refused and why).
        OSError: the name does not resolve (``socket.gaierror``).
    """
    allowed: list[tuple[socket.AddressFamily, str]] = []
    refused: AddressRefused | None = None
    for family, _kind, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        text = str(sockaddr[0]).split("%", 1)[0]
        reason = policy.refusal(ipaddress.ip_address(text))
        if reason is None:
            allowed.append((family, text))
        elif refused is None:
            refused = AddressRefused(host, text, reason)
    if not allowed:
        raise refused or AddressRefused(host, "unresolvable", "non-public")
    return allowed


def connect(host: str, port: int, *, timeout: float, policy: OutboundPolicy) -> socket.socket:
    """A TCP connection to ``host``, made only to an address ``policy`` allows (checked again once connected).

    Raises:
        AddressRefused: no allowed address, or the connected peer is not one.
        OSError: resolving or connecting failed (``TimeoutError``, ``ConnectionRefusedError``, ...).
    """
    last: OSError | None = None
    for family, address in allowed_addresses(host, port, policy):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((address, port))
            peer = str(sock.getpeername()[0]).split("%", 1)[0]
            reason = policy.refusal(ipaddress.ip_address(peer))
            if reason is not None:
                raise AddressRefused(host, peer, reason)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except AddressRefused:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"cannot connect to {host}")


class GuardedHTTPConnection(http.client.HTTPConnection):
    """``http.client.HTTPConnection`` whose socket comes from :func:`connect`."""

    def __init__(self, host: str, port: int | None = None, *, timeout: float, policy: OutboundPolicy) -> None:
        super().__init__(host, port, timeout=timeout)
        self.policy = policy

    def connect(self) -> None:
        self.sock = connect(self.host, self.port, timeout=float(self.timeout or 10), policy=self.policy)


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    """``http.client.HTTPSConnection`` whose socket comes from :func:`connect` (TLS checked as usual)."""

    def __init__(self, host: str, port: int | None = None, *, timeout: float, policy: OutboundPolicy,
                 context: ssl.SSLContext | None = None) -> None:
        self.tls = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.policy = policy

    def connect(self) -> None:
        sock = connect(self.host, self.port, timeout=float(self.timeout or 10), policy=self.policy)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def open_connection(url: str, *, timeout: float, policy: OutboundPolicy,
                    tls: ssl.SSLContext | None = None) -> tuple[http.client.HTTPConnection, str]:
    """A guarded connection for ``url`` (not yet connected) and the request target (path and query).

    Raises:
        ValueError: not an ``http://`` or ``https://`` URL with a host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("only http:// and https:// URLs with a host can be fetched")
    port = parts.port or (443 if parts.scheme == "https" else 80)  # ValueError for a port out of range
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        return GuardedHTTPSConnection(parts.hostname, port, timeout=timeout, policy=policy, context=tls), target
    return GuardedHTTPConnection(parts.hostname, port, timeout=timeout, policy=policy), target


def describe(exc: BaseException) -> str:
    """A connection failure in words for one error line (never a class name alone)."""
    if isinstance(exc, AddressRefused):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate does not verify ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed"
    if isinstance(exc, http.client.HTTPException):
        return "the server did not answer with HTTP"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "the connection failed"


#: ``post(url, body, timeout) -> (HTTP status or None, response body, transport error or None)``
Post = Callable[[str, bytes, float], tuple[int | None, bytes, str | None]]


def http_poster(policy: OutboundPolicy, *, limit: int = 65_536) -> Post:
    """POST JSON over HTTP(S) to addresses ``policy`` allows only, no redirects, bounded by the timeout to
    connect and to read; the answer's first ``limit`` bytes (a longer answer is cut there: its parser fails)."""

    def post(url: str, body: bytes, timeout: float) -> tuple[int | None, bytes, str | None]:
        try:
            connection, target = open_connection(url, timeout=timeout, policy=policy)
            try:
                connection.request("POST", target, body=body, headers={
                    "Content-Type": "application/json", "Accept": "application/json",
                    "User-Agent": "ccm-exchange/1"})
                response = connection.getresponse()
                return response.status, response.read(limit), None
            finally:
                connection.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, b"", describe(exc)

    return post
