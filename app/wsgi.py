"""WSGI entry point: ``CULTURESIM_RESULTS=results gunicorn -w 1 --threads 8 'app.wsgi:server'``.

One worker with threads: runs started from the app are tracked in the worker's memory
(app.launcher); the pages themselves work with any number of workers.
"""

from __future__ import annotations

import os

from app import create_app

app = create_app(os.environ.get("CULTURESIM_RESULTS", "results"))
server = app.server
