"""WSGI entry point: ``CULTURESIM_RESULTS=results gunicorn -w 1 --threads 8 'app.wsgi:server'``.

One worker with threads: runs started from the app are tracked in the worker's memory
(app.launcher); the pages themselves work with any number of workers.

``CULTURESIM_ALLOWED_HOSTS=name1,name2``: the names clients reach the app by, beside the
loopback ones (the Host header check, app.guard; ``*`` turns it off behind a proxy that
checks names itself). ``CULTURESIM_ALLOW_KEY_ENVS=NAME1,NAME2``: the key variables scenarios
started from the app may name as ``llm.api_key_env`` (as ``culturesim app --allow-key-env``).
"""

from __future__ import annotations

import os

from app import create_app

ALLOW_KEY_ENVS_ENV = "CULTURESIM_ALLOW_KEY_ENVS"

app = create_app(os.environ.get("CULTURESIM_RESULTS", "results"),
                 allow_key_env=[n.strip() for n in os.environ.get(ALLOW_KEY_ENVS_ENV, "").split(",") if n.strip()])
server = app.server
