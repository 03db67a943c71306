"""HTTP out: POST a sealed envelope to a partner's ``/federation/v1/inbox`` and bring back its answer.

The transport only moves bytes and reports what happened; what an answer means is decided in ``retry.py``
and ``queue.py``. It uses the standard library's ``http.client`` rather than ``requests``: a delivery worker is
CPU-bound when it drains a backlog (one process, many threads, one GIL), and ``http.client`` costs about a
third of the CPU per request. Each worker thread keeps one connection per partner alive when the partner
allows it; a kept connection that the partner closed in the meantime is replaced once (resending the same
bytes is safe: the inbox answers an exact retransmission with its original receipt).

Connections go only to addresses the node's ``OutboundPolicy`` allows (``node.outbound``): a partner's card
that names a loopback or private address gets ``address_refused``, never a connection.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

from node.outbound import AddressRefused, GuardedHTTPConnection, GuardedHTTPSConnection, OutboundPolicy

INBOX_PATH = "/federation/v1/inbox"
ENVELOPE_MEDIA_TYPE = "application/json"
MAX_ANSWER_BYTES = 65_536


@dataclass(frozen=True)
class DeliveryAnswer:
    """The outcome of one POST: the status and body, or ``error`` when no answer came."""

    status: int | None
    body: bytes = b""
    error: str | None = None
    retry_after: float | None = None


class Transport(Protocol):
    def deliver(self, base_url: str, envelope: bytes) -> DeliveryAnswer:
        """POST ``envelope`` to the inbox under ``base_url``; never raises for network failures."""
        ...

    def close(self) -> None:
        """Release connections (the worker calls it when it stops)."""
        ...


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class _Stale(Exception):
    """A kept-alive connection was closed by the partner before it answered."""


class HttpTransport:
    """Delivery over HTTP(S), bounded in time (connect and read timeouts) and in the size of the answer."""

    def __init__(self, *, policy: OutboundPolicy | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, max_answer_bytes: int = MAX_ANSWER_BYTES,
                 tls: ssl.SSLContext | None = None) -> None:
        self._policy = policy or OutboundPolicy()  # public addresses only, unless the node allows more
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max = max_answer_bytes
        self._tls = tls
        self._local = threading.local()
        self._all: list[dict[tuple[str, str, int | None], http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def _connections(self) -> dict[tuple[str, str, int | None], http.client.HTTPConnection]:
        held: dict[tuple[str, str, int | None], http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None)
        if held is None:
            held = {}
            self._local.connections = held
            with self._lock:
                self._all.append(held)
        return held

    def _connect(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if scheme == "https":
            self._tls = self._tls or ssl.create_default_context()
            connection = GuardedHTTPSConnection(host, port, timeout=self._connect_timeout, policy=self._policy,
                                                context=self._tls)
        else:
            connection = GuardedHTTPConnection(host, port, timeout=self._connect_timeout, policy=self._policy)
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(self._read_timeout)
        return connection

    def deliver(self, base_url: str, envelope: bytes) -> DeliveryAnswer:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return DeliveryAnswer(None, error="bad_url")
        key = (parts.scheme, parts.hostname, parts.port)
        path = parts.path.rstrip("/") + INBOX_PATH
        connections = self._connections()
        for _ in range(2):
            connection = connections.pop(key, None)
            kept = connection is not None
            try:
                if connection is None:
                    connection = self._connect(*key)
                return self._post(connection, path, envelope, kept, connections, key)
            except _Stale:
                continue
            except AddressRefused:
                return DeliveryAnswer(None, error="address_refused")
            except TimeoutError:
                return DeliveryAnswer(None, error="timeout")
            except (OSError, http.client.HTTPException):
                return DeliveryAnswer(None, error="connection_failed")
        return DeliveryAnswer(None, error="connection_failed")

    def _post(self, connection: http.client.HTTPConnection, path: str, envelope: bytes, kept: bool,
              connections: dict[tuple[str, str, int | None], http.client.HTTPConnection],
              key: tuple[str, str, int | None]) -> DeliveryAnswer:
        try:
            connection.request("POST", path, body=envelope,
                               headers={"Content-Type": ENVELOPE_MEDIA_TYPE, "User-Agent": "ccm-exchange/1"})
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            connection.close()
            if kept:
                raise _Stale from None
            raise
        except BaseException:
            connection.close()
            raise
        try:
            body = response.read(self._max + 1)
            if len(body) > self._max:
                connection.close()
                return DeliveryAnswer(response.status, b"", "answer_too_large")
            if response.will_close:
                connection.close()
            else:
                response.read()  # drain, so that the connection can carry the next request
                connections[key] = connection
        except BaseException:
            connection.close()
            raise
        return DeliveryAnswer(response.status, body, None, _retry_after(response.getheader("Retry-After")))

    def close(self) -> None:
        """Close the connections every thread kept (call it once the threads are done)."""
        with self._lock:
            for held in self._all:
                for connection in held.values():
                    connection.close()
                held.clear()
