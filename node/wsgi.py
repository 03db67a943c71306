"""WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py node.wsgi:app``.

The data directory comes from ``CCM_DATA_DIR``.
"""

from node import create_app
from node.config import load_config

app = create_app(load_config())
