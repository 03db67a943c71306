"""The gunicorn worker a node runs: requests are read whole in the event loop before a thread gets them.

gunicorn's ``sync`` worker serves one connection at a time from the moment it is accepted, so 50 clients that
send their headers a line every few seconds ("slowloris") occupy every worker and the node stops answering. Its
``gthread`` worker waits for the first bytes in the event loop, but then reads the rest of the request in a
thread, so the same clients take every thread.

:class:`BufferingWorker` (a ``gthread`` worker) reads each request, headers and body, into memory in its
event loop, without a thread, and hands a thread only a complete request; a slow client costs a buffer, not a
thread. A request that is not complete within :data:`HEADER_SECONDS` (headers) or :data:`REQUEST_SECONDS`
(headers and body) is answered ``408 Request Timeout`` and closed. A request larger than the node accepts is
handed on as soon as its headers are read: the app answers 413 without reading it. Kept-alive connections go
through the same path for their next request, also when the client sent it before the answer (pipelining).

What is buffered is bounded: at most ``max_request_bytes`` of body (plus :data:`MAX_HEAD_BYTES` of headers)
per connection and ``worker_connections`` connections per worker.

A worker that has served :data:`RECYCLE_AFTER_REQUESTS` requests and then sat idle (no request and no open
connection) for :data:`IDLE_RECYCLE_SECONDS` exits gracefully, and gunicorn forks a fresh one from the
preloaded, warmed master (a few milliseconds). Serving touches the objects it shares with the master (CPython
writes their reference counts), so those pages turn into private copies, and its heap keeps the burst's
fragments: a node that served a busy morning would otherwise keep the morning's memory all afternoon
(bench/web_bench.py: about 25 MB over two workers after 2,000 pages).
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from collections import deque
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

#: Seconds a client has to send a request's headers, from its first byte (or from the connection).
HEADER_SECONDS = 10.0
#: Seconds a client has to send a whole request, headers and body.
REQUEST_SECONDS = 60.0
#: Headers longer than this are handed on unfinished: gunicorn's parser refuses them (400).
MAX_HEAD_BYTES = 65_536
_READ = 65_536
#: A worker that served this many requests since it started ...
RECYCLE_AFTER_REQUESTS = 500
#: ... is replaced by a fresh fork after this many seconds without a request or an open connection.
IDLE_RECYCLE_SECONDS = 30.0
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,12})[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: 33\r\n\r\nThe request took too long to send.")


class BufferedConn(TConn):  # type: ignore[misc]
    """A connection with the bytes read ahead of its parser, and the deadlines of the request being read."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.pending = bytearray()
        self.reset_deadlines()

    def reset_deadlines(self) -> None:
        now = time.monotonic()
        self.head_deadline = now + HEADER_SECONDS
        self.request_deadline = now + REQUEST_SECONDS

    def init(self) -> None:
        fresh = not self.initialized
        super().init()
        if fresh and self.pending and self.parser is not None:
            self.parser.unreader.unread(bytes(self.pending))
            self.pending.clear()


def request_complete(data: bytes | bytearray, max_body: int) -> bool:
    """Whether ``data`` holds a whole HTTP/1.x request, or enough that the rest is not ours to wait for.

    True when the headers are complete and either the body of the length they declare has arrived, or that
    length is over ``max_body`` (the app refuses it unread); for a chunked body, when its last chunk has
    arrived or more than ``max_body`` bytes have; also when the headers alone pass ``MAX_HEAD_BYTES``.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data) > MAX_HEAD_BYTES
    head = bytes(data[:end + 2])
    body = len(data) - end - 4
    if _CHUNKED.search(head):
        return body > max_body or data.endswith(b"0\r\n\r\n")
    declared = _CONTENT_LENGTH.search(head)
    length = int(declared.group(1)) if declared else 0
    return length > max_body or body >= length


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, reading every request whole in its event loop (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: deque[BufferedConn] = deque()
        self.max_body = 1_048_576
        self.last_busy = time.monotonic()
        self.served = 0
        self.in_flight = 0

    def load_wsgi(self) -> None:
        super().load_wsgi()
        ctx = getattr(self.wsgi, "extensions", {}).get("ccm")
        if ctx is not None:  # the largest body buffered: what the node accepts at all
            self.max_body = ctx.config.max_request_bytes

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._start_reading(conn)

    def on_client_socket_readable(self, conn: BufferedConn, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: read it whole too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        conn.reset_deadlines()
        self._start_reading(conn)
        self._read(conn, client)

    def finish_request(self, conn: BufferedConn, fs: Any) -> None:
        """After a response on a kept-alive connection: bytes the client sent ahead of it (pipelining) are a
        request of their own, read whole here like any other, never handed to a thread unfinished."""
        self.in_flight = max(0, self.in_flight - 1)
        self.last_busy = time.monotonic()
        try:
            keep = not fs.cancelled() and fs.result() is True
        except Exception:
            keep = False
        if keep and self.alive and conn.parser is not None:
            ahead = conn.parser.unreader.take_buffered()
            if ahead:
                conn.pending += ahead
                conn.reset_deadlines()
                self._start_reading(conn)
                if request_complete(conn.pending, self.max_body):
                    self._hand_over(conn)
                return
        super().finish_request(conn, fs)

    def _start_reading(self, conn: BufferedConn) -> None:
        conn.sock.setblocking(False)
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, lambda sock: self._read(conn, sock))

    def _read(self, conn: BufferedConn, sock: socket.socket) -> None:
        if conn not in self.reading:
            return
        try:
            data = sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:  # the client went away before finishing its request
            self._drop(conn)
            return
        conn.pending += data
        if request_complete(conn.pending, self.max_body):
            self._hand_over(conn)

    def _hand_over(self, conn: BufferedConn) -> None:
        self.last_busy = time.monotonic()
        self.served += 1
        self.in_flight += 1
        self.reading.remove(conn)
        self.poller.unregister(conn.sock)
        conn.data_ready = True
        if conn.initialized and conn.parser is not None:  # a kept-alive connection: its parser exists
            conn.parser.unreader.unread(bytes(conn.pending))
            conn.pending.clear()
        self.enqueue_req(conn)

    def _drop(self, conn: BufferedConn, answer: bytes | None = None) -> None:
        self.reading.remove(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        if answer is not None:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)
        self.nr_conns -= 1
        conn.close()

    def recycle_due(self, now: float) -> bool:
        """True when this worker served a burst and has been quiet since (module docstring)."""
        return (self.alive and self.served >= RECYCLE_AFTER_REQUESTS and self.in_flight == 0
                and self.nr_conns == 0 and now - self.last_busy >= IDLE_RECYCLE_SECONDS)

    def murder_pending(self) -> None:
        """Also close the connections whose request is late (called on every turn of the event loop)."""
        super().murder_pending()
        now = time.monotonic()
        if self.recycle_due(now):
            self.log.info("worker %s: idle after %s requests, making way for a fresh one", self.pid, self.served)
            self.alive = False
        for conn in [c for c in self.reading
                     if now > c.request_deadline or (now > c.head_deadline and b"\r\n\r\n" not in c.pending)]:
            self._drop(conn, _TIMEOUT_ANSWER)
