"""gunicorn settings for a node: ``CCM_DATA_DIR=/srv/ccm gunicorn -c deploy/gunicorn.conf.py node.wsgi:app``.

Behind a TLS-terminating reverse proxy (see docs/operations.md); bind to loopback only.
"""

import os

from node.serve import GUNICORN_DEFAULTS, post_fork  # noqa: F401  (gunicorn reads the post_fork hook)

bind = os.environ.get("CCM_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CCM_WORKERS", "2"))
worker_class = GUNICORN_DEFAULTS["worker_class"]  # reads each request whole before a thread serves it
threads = GUNICORN_DEFAULTS["threads"]
worker_connections = GUNICORN_DEFAULTS["worker_connections"]
preload_app = GUNICORN_DEFAULTS["preload_app"]
timeout = GUNICORN_DEFAULTS["timeout"]
graceful_timeout = GUNICORN_DEFAULTS["graceful_timeout"]
keepalive = GUNICORN_DEFAULTS["keepalive"]
max_requests = GUNICORN_DEFAULTS["max_requests"]
max_requests_jitter = GUNICORN_DEFAULTS["max_requests_jitter"]
limit_request_line = GUNICORN_DEFAULTS["limit_request_line"]
limit_request_fields = GUNICORN_DEFAULTS["limit_request_fields"]
accesslog = None  # request paths carry case ids; keep them out of logs by default
errorlog = "-"
loglevel = "info"
