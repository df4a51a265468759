"""Two guards in front of every request of the app: the Host header, and callback inputs.

**Host header (DNS rebinding).** A page on any web site can make a browser send requests to
``127.0.0.1:8050`` under the site's own name (its DNS answer changed to 127.0.0.1), then read
the answers: the app's runs, and its "Run a scenario" page. Such requests carry the site's
name in ``Host``; requests whose Host is not a name the app serves get 400 before any page
or callback runs. The names: ``127.0.0.1``, ``localhost``, ``::1``, the address the app binds
(``--host``) and each ``--allow-host NAME`` (``*`` turns the check off, for a proxy that checks
names itself); under gunicorn, ``CULTURESIM_ALLOWED_HOSTS`` (comma-separated).

**Callback inputs.** A browser sends whatever a caller writes to ``/_dash-update-component``:
a list where a page expects a run id, a dict, a number too big for any table. The pages
are written for what their own components send; rather than repeat type checks in every
callback, the dispatch route answers 400 with one logged line when a callback fails on its
input with an error of the kinds wrong types raise (below), instead of a 500 and a traceback.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterable

from app.data import DataError

log = logging.getLogger("culturesim.app")

ALLOWED_HOSTS_ENV = "CULTURESIM_ALLOWED_HOSTS"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DISPATCH = "_dash-update-component"
# what a callback raises on an input of the wrong type or size, or a run id that is no run
# (and an OSError of a name too long for the file system)
BAD_INPUT = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
             DataError)


def host_name(header: str) -> str:
    """``example.org:8050`` -> ``example.org``; ``[::1]:8050`` -> ``::1``; lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") > 1:  # a bare IPv6 address
        return header
    return header.rsplit(":", 1)[0] if ":" in header else header


def allowed_hosts(bind: str | None = None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names, the bound address (unless it is every interface) and ``extra``."""
    names = set(LOOPBACK)
    if bind and bind.strip("[]") not in ("0.0.0.0", "::", ""):
        names.add(bind.strip("[]").lower())
    names.update(n.strip().lower() for n in extra if n.strip())
    return frozenset(n if n == "*" or n.count(":") > 1 else host_name(n) for n in names)


def install_host_check(server, hosts: frozenset[str]) -> None:
    """Refuse (400, no traceback) a request whose Host header names no allowed host."""
    from flask import request

    server.config["CULTURESIM_ALLOWED_HOSTS"] = hosts

    @server.before_request
    def _check_host():
        if "*" in hosts:
            return None
        header = request.headers.get("Host", "")
        if host_name(header) in hosts:
            return None
        log.warning("refused a request for host %r (allowed: %s)", header[:100], ", ".join(sorted(hosts)))
        return ("This address is not served here (Host header not allowed). Start the app with "
                "--allow-host NAME to serve it.", 400, {"Content-Type": "text/plain; charset=utf-8"})


def install_callback_guard(app, ready: threading.Event | None = None) -> None:
    """Wrap the callback dispatch route: an input a callback cannot take is a 400, logged on
    one line. ``ready``: set once the warm-up imports are done; dispatch waits for it, since
    a module imported by two threads at once can be seen half-initialised."""
    from dash.exceptions import DashException
    from flask import request

    bad_input = (*BAD_INPUT, DashException)  # e.g. a pathname the page router cannot take
    server = app.server
    endpoint = app.config.routes_pathname_prefix + DISPATCH
    dispatch = server.view_functions[endpoint]

    def guarded(*args, **kwargs):
        if ready is not None:
            ready.wait(120)
        try:
            return dispatch(*args, **kwargs)
        except (*bad_input, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.ENAMETOOLONG:
                raise  # a real I/O failure, not an input: a 500 and its traceback
            body = request.get_json(silent=True)
            output = body.get("output") if isinstance(body, dict) else None
            log.warning("callback %s refused its input: %s: %s", str(output)[:200], type(exc).__name__,
                        str(exc).splitlines()[0][:300] if str(exc) else "")
            return ("The callback could not use its input.", 400, {"Content-Type": "text/plain; charset=utf-8"})

    server.view_functions[endpoint] = guarded
