"""WSGI entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py node.wsgi:app``.

The data directory comes from ``CCM_DATA_DIR``.
"""

from node import create_app
from node.config import load_config
from node.web.warm import freeze, warm_up

app = create_app(load_config())
warm_up(app)  # with preload_app (deploy/gunicorn.conf.py) the workers share what this builds
freeze()
