"""The HTTP transport against a local server: answers, keep-alive, a connection the server dropped, timeouts,
refusals and oversized answers."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from node.exchange.delivery.transport import INBOX_PATH, HttpTransport
from node.outbound import OutboundPolicy

LOOPBACK = OutboundPolicy(allow_loopback=True)  # these tests' servers listen on 127.0.0.1


class _Server(http.server.ThreadingHTTPServer):
    mode: str
    connections: int
    bodies: list[bytes]

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        assert self.path == INBOX_PATH
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.server.mode
        if mode == "slow":
            time.sleep(1.0)
        body = b"x" * 70_000 if mode == "big" else b'{"ok":true}'
        self.send_response(429 if mode == "busy" else 200)
        self.send_header("Content-Length", str(len(body)))
        if mode == "busy":
            self.send_header("Retry-After", "120")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return
        if mode == "drop":  # keep-alive promised, then the connection is closed anyway
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.mode, srv.connections, srv.bodies = "ok", 0, []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def transport() -> Iterator[HttpTransport]:
    made = HttpTransport(policy=LOOPBACK)
    yield made
    made.close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_answers_and_keeps_the_connection_alive(server: _Server, transport: HttpTransport) -> None:
    first = transport.deliver(_url(server), b'{"a":1}')
    second = transport.deliver(_url(server) + "/", b'{"a":2}')
    assert (first.status, first.body, first.error) == (200, b'{"ok":true}', None)
    assert second.status == 200 and server.bodies == [b'{"a":1}', b'{"a":2}']
    assert server.connections == 1


def test_a_dropped_kept_connection_is_replaced_once(server: _Server, transport: HttpTransport) -> None:
    server.mode = "drop"
    assert transport.deliver(_url(server), b"1").status == 200
    time.sleep(0.05)
    assert transport.deliver(_url(server), b"2").status == 200
    assert server.bodies == [b"1", b"2"] and server.connections == 2


def test_retry_after_and_oversized_answers(server: _Server, transport: HttpTransport) -> None:
    server.mode = "busy"
    answer = transport.deliver(_url(server), b"1")
    assert (answer.status, answer.retry_after) == (429, 120.0)
    server.mode = "big"
    answer = transport.deliver(_url(server), b"1")
    assert (answer.status, answer.body, answer.error) == (200, b"", "answer_too_large")


def test_timeout_refused_and_bad_url(server: _Server) -> None:
    server.mode = "slow"
    slow = HttpTransport(policy=LOOPBACK, read_timeout=0.2)
    assert slow.deliver(_url(server), b"1").error == "timeout"
    slow.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert HttpTransport(policy=LOOPBACK).deliver(f"http://127.0.0.1:{closed}", b"1").error == "connection_failed"
    assert HttpTransport(policy=LOOPBACK).deliver("ftp://example.org", b"1").error == "bad_url"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "[::ffff:127.0.0.1]", "localhost"])
def test_a_node_delivers_to_no_loopback_or_private_address_by_default(server: _Server, host: str) -> None:
    """A partner card naming a local address gets no connection (``node.outbound``); the node's config
    widens it only with [network] allow_loopback / allow_networks."""
    strict = HttpTransport()
    try:
        answer = strict.deliver(f"http://{host}:{server.server_address[1]}", b'{"a":1}')
    finally:
        strict.close()
    assert (answer.status, answer.error) == (None, "address_refused") and server.bodies == []
