"""deploy/nginx/ccm-node.conf: nginx accepts it (``nginx -t``), and a real nginx running it in front of a stand-in
node refuses /metrics, proxies /federation/ with the forwarded headers, sends HSTS, compresses pages and refuses
a body the node would refuse.

Skipped when nginx is not installed (``.ci/run`` installs it). The certificate is self-signed, made here with
``openssl req -x509``; nginx runs with ``-p`` and every path (pid, logs, temporary files) in a temporary
directory.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.config import NodeConfig

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "ccm-node.conf"
CERT = "/etc/letsencrypt/live/ccm.example.org/fullchain.pem"
KEY = "/etc/letsencrypt/live/ccm.example.org/privkey.pem"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
OPENSSL = shutil.which("openssl")

needs_nginx = pytest.mark.skipif(NGINX is None or OPENSSL is None,
                                 reason="nginx (and openssl) not installed: apt-get install nginx-light openssl")


def _directives(text: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^[ \t]*{name}[ \t]+([^;\n]*);", text, re.MULTILINE)]


def _size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def test_body_limit_is_the_nodes_max_request_bytes() -> None:
    """Kept in step by hand (the comment says so); this fails when one changes without the other."""
    text = SITE.read_text(encoding="utf-8")
    default = next(f.default for f in dataclasses.fields(NodeConfig) if f.name == "max_request_bytes")
    assert [_size(v) for v in _directives(text, "client_max_body_size")] == [default]
    assert "max_request_bytes" in text
    # ... and the body is kept in memory up to that size, never in a temporary file
    assert [_size(v) for v in _directives(text, "client_body_buffer_size")] == [default]


def test_static_promises() -> None:
    text = SITE.read_text(encoding="utf-8")
    assert _directives(text, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    assert re.search(r'^\s*add_header Strict-Transport-Security "max-age=\d+; includeSubDomains" always;', text,
                     re.MULTILINE)
    headers = _directives(text, "proxy_set_header")
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in headers
    assert "X-Forwarded-Proto $scheme" in headers
    assert _directives(text, "proxy_read_timeout")
    assert re.search(r"location \^~ /metrics \{\s*deny all;\s*\}", text)
    assert re.search(r"location /federation/ \{\s*proxy_pass http://ccm_node;", text)
    assert _directives(text, "gzip") == ["on"] and "text/css" in _directives(text, "gzip_types")[0]
    assert _directives(text, "server") == ["127.0.0.1:8000"]  # the upstream: gunicorn on loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=ccm.example.org"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _wrapper(tmp: Path, site_text: str, extra_main: str = "") -> Path:
    """A whole nginx.conf around the site file, with everything nginx writes inside ``tmp``."""
    (tmp / "logs").mkdir(exist_ok=True)
    (tmp / "site.conf").write_text(site_text, encoding="utf-8")
    conf = tmp / "nginx.conf"
    temp_paths = " ".join(f"{kind}_temp_path {tmp / kind};" for kind in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""
pid {tmp / 'nginx.pid'};
error_log {tmp / 'logs' / 'error.log'} warn;
{extra_main}
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp_paths}
    include {tmp / 'site.conf'};
}}
""", encoding="utf-8")
    return conf


def _site_with_certificate(tmp: Path) -> str:
    cert, key = _certificate(tmp)
    return SITE.read_text(encoding="utf-8").replace(CERT, str(cert)).replace(KEY, str(key))


@needs_nginx
def test_nginx_t_accepts_the_site(tmp_path: Path) -> None:
    conf = _wrapper(tmp_path, _site_with_certificate(tmp_path))
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


class _Node(http.server.BaseHTTPRequestHandler):
    """Stands in for gunicorn: records what nginx forwarded, answers a page big enough to compress."""

    seen: list[dict[str, str]] = []  # noqa: RUF012 - one list per test run, reset by the fixture

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = ("<!doctype html><title>node</title>" + "<p>Stage tracker</p>" * 200).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.seen.append({"path": self.path, "length": str(length)})
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[int, type[_Node]]]:
    """nginx with the site (TLS on a free loopback port) in front of a stand-in node; yields the TLS port."""
    if os.geteuid() != 0:
        pytest.skip("runs nginx as root (single process) like nginx -t in CI")
    _Node.seen = []
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    tls_port, http_port = _free_port(), _free_port()
    site = _site_with_certificate(tmp_path)
    site = site.replace("listen [::]:80;", "").replace("listen [::]:443 ssl;", "")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{backend.server_address[1]};")
    conf = _wrapper(tmp_path, site, "daemon off; master_process off;")
    errors = tmp_path / "logs" / "stderr.log"
    with errors.open("wb") as stderr:
        process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                   stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not start: {errors.read_text()}") from None
                time.sleep(0.05)
        yield tls_port, _Node
    finally:
        process.terminate()
        process.wait(timeout=10)
        backend.shutdown()
        backend.server_close()


def _get(port: int, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
         tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    context = tls or ssl._create_unverified_context()  # the test's own self-signed certificate
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


@needs_nginx
@pytest.mark.slow
def test_running_nginx_behaves_as_the_guide_says(proxied: tuple[int, type[_Node]]) -> None:
    port, node = proxied
    # /metrics is refused however it is written, and never reaches the node
    for path in ("/metrics", "/metrics/", "//metrics", "/%6detrics", "/api/../metrics"):
        assert _get(port, path)[0] == 403, path
    assert node.seen == []

    status, headers, body = _get(port, "/federation/v1/card", headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 200 and body.startswith(b"<!doctype html>")
    forwarded = node.seen[-1]
    assert forwarded["path"] == "/federation/v1/card"
    assert forwarded["x-forwarded-proto"] == "https"
    assert forwarded["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert "nginx/" not in headers.get("Server", "")  # server_tokens off

    status, headers, body = _get(port, "/cases", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(body).startswith(b"<!doctype html>")

    # a body the node accepts passes; one byte more is refused by nginx (413) before the node sees it
    limit = next(f.default for f in dataclasses.fields(NodeConfig) if f.name == "max_request_bytes")
    assert _get(port, "/federation/v1/inbox", data=b"x" * limit)[0] == 202
    assert node.seen[-1]["length"] == str(limit)
    seen = len(node.seen)
    assert _get(port, "/federation/v1/inbox", data=b"x" * (limit + 1))[0] == 413
    assert len(node.seen) == seen

    # TLS 1.2 is enough (older clients than 1.2 are refused by ssl_protocols, checked above)
    tls12 = ssl._create_unverified_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _get(port, "/cases", tls=tls12)[0] == 200
