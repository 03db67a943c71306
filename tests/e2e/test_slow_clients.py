"""Slow clients against a real node: 200 connections that send their headers a line every 3 s neither stop the
node answering others within a second, nor stay open past the header deadline (node/serve_worker.py).

Both ways a node is started: ``ccm-node serve`` (README) and gunicorn with ``deploy/gunicorn.conf.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.serve_worker import HEADER_SECONDS, request_complete
from tests.harness import ROOT, Network, NodeProcess, free_port

pytestmark = pytest.mark.slow
SLOW = 200
LINE_EVERY = 3.0


def _open_slow(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /federation/v1/card HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    return socks


def _feed(socks: list[socket.socket], stop: threading.Event) -> None:
    """One more header line on every slow connection every 3 s (never the blank line that ends them)."""
    while not stop.wait(LINE_EVERY):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.sendall(b"X-Slow: still-sending\r\n")


def _normal_request(port: int) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/federation/v1/card")
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        data = sock.recv(200)
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def _check_slow_clients_are_harmless(port: int) -> None:
    socks = _open_slow(port, SLOW)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(socks, stop), daemon=True)
    feeder.start()
    try:
        opened = time.monotonic()
        timings = []
        while time.monotonic() - opened < HEADER_SECONDS - 1:
            status, took = _normal_request(port)
            assert status == 200
            timings.append(took)
            time.sleep(0.5)
        assert len(timings) >= 10 and max(timings) < 1.0, timings
        deadline = opened + HEADER_SECONDS + 5
        open_socks = list(socks)
        while open_socks and time.monotonic() < deadline:
            open_socks = [s for s in open_socks if not _closed_by_server(s)]
        assert not open_socks, f"{len(open_socks)} slow connections still open {HEADER_SECONDS + 5:g} s later"
        assert _normal_request(port)[0] == 200
    finally:
        stop.set()
        for sock in socks:
            sock.close()


def test_ccm_node_serve_answers_while_200_clients_send_slowly(tmp_path: Path) -> None:
    net = Network(tmp_path, lambda: None)
    node = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    try:
        node.start()
        _check_slow_clients_are_harmless(node.port)
    finally:
        net.stop_all()


def test_a_request_pipelined_behind_another_is_read_whole_too(tmp_path: Path) -> None:
    """A client that sends a whole request and the start of the next one (pipelining) gets its answer, and the
    unfinished second request waits in the event loop, not in a thread: 100 such clients do not stop the node."""
    net = Network(tmp_path, lambda: None)
    node = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    socks: list[socket.socket] = []
    try:
        node.start()
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            sock.sendall(b"GET /federation/v1/card HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /federation/v1/card HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        timings = []
        for _ in range(6):
            status, took = _normal_request(node.port)
            assert status == 200
            timings.append(took)
            time.sleep(0.3)
        assert max(timings) < 1.0, timings
        deadline = time.monotonic() + HEADER_SECONDS + 5
        answered = 0
        for sock in socks:  # each got its first answer, then a 408 for the unfinished second request
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            data = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65_536):
                    data += chunk
            answered += data.startswith(b"HTTP/1.1 200") and b"408 Request Timeout" in data
        assert answered == len(socks)
    finally:
        for sock in socks:
            sock.close()
        net.stop_all()


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[int]:
    """A node run the production way: gunicorn with deploy/gunicorn.conf.py and CCM_DATA_DIR."""
    node = NodeProcess("se.gi-goteborg", "Göteborgs-Initiativet", tmp_path / "gbg", None)
    node.init()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    env.update(CCM_DATA_DIR=str(node.data_dir), CCM_BIND=f"127.0.0.1:{port}", CCM_WORKERS="2")
    log = (tmp_path / "gunicorn.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "node.wsgi:app"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-2000:]
            try:
                if _normal_request(port)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.1)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_the_production_deployment_answers_while_200_clients_send_slowly(deployed: int) -> None:
    _check_slow_clients_are_harmless(deployed)


@pytest.mark.parametrize(("data", "complete"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", False),
    (b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nabcde", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", True),  # over the limit: the app answers 413
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70_000, True),  # headers too long: gunicorn refuses them
])
def test_a_request_is_handed_on_when_it_is_whole(data: bytes, complete: bool) -> None:
    assert request_complete(data, max_body=1_048_576) is complete
