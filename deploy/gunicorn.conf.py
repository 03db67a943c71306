"""gunicorn settings for a node: ``CCM_DATA_DIR=/srv/ccm gunicorn -c deploy/gunicorn.conf.py node.wsgi:app``.

Behind a TLS-terminating reverse proxy (see docs/operations.md); bind to loopback only.
"""

import os

from node.config import resolve_data_dir
from node.observability import multiprocess
from node.serve import GUNICORN_DEFAULTS, child_exit, post_fork, when_ready  # noqa: F401  (gunicorn's hooks)

# /metrics: every worker's counters go to files in <data_dir>/metrics/, emptied when the master starts (before
# the app is preloaded); when_ready drops what the master's warm-up counted; child_exit marks a worker that exited.
multiprocess.prepare(resolve_data_dir(None))

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
