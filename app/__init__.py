"""The Dash app for exploring runs and sweeps: ``create_app(results_dir) -> dash.Dash``.

Pages are modules in ``app/pages/``; each calls ``dash.register_page`` and wires its
callbacks on the app it is given (``register(app)``), so several apps (one per results
folder, as in tests) can live in one process without sharing callbacks. The results
folder and the launcher hang on the Flask app's config, where layouts and callbacks
find them during a request. Per-kind additions plug in through :mod:`app.kinds`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from pathlib import Path

__all__ = ["create_app"]


def page_modules() -> list:
    import app.pages as pages

    found = []
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"app.pages.{info.name}")
        if hasattr(module, "register"):
            found.append(module)
    return found


def _warm_imports(done: threading.Event) -> None:
    """Import what the plots need (scikit-learn alone takes ~3 s) while the first page is
    being looked at, so the first map or clustering does not pay for it."""
    try:
        for name in ("pandas", "scipy.stats", "sklearn.feature_extraction.text", "sklearn.decomposition",
                     "sklearn.cluster", "analysis.price", "analysis.dynamics", "analysis.diversity",
                     "analysis.stats"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    finally:
        done.set()


def _measure_spec(given: str | None) -> str | None:
    spec = given or os.environ.get("CULTURESIM_MEASURE_EMBEDDER", "").strip() or "best"
    return None if spec == "off" else spec


def create_app(results_dir: str | Path | None = None, *, title: str = "culturesim",
               allow_key_env: tuple[str, ...] | list[str] = (), hosts: frozenset[str] | None = None,
               measure_embedder: str | None = None):
    """A Dash app over one results folder (default: $CULTURESIM_RESULTS, else ./results).

    ``allow_key_env``: the environment variables a scenario started here may name as
    ``llm.api_key_env`` (and the only ones of the app's its jobs see). ``hosts``: the names the
    Host header may carry (default: loopback, plus $CULTURESIM_ALLOWED_HOSTS); see app.guard.
    ``measure_embedder``: what a finished run found unmeasured is measured with in the
    background (app.measuring; ``best``: MiniLM if installed, else TF-IDF; ``off``: it is not),
    also for the runs started here; default: $CULTURESIM_MEASURE_EMBEDDER, else ``best``."""
    import dash
    from dash import Input, Output, dcc, html

    from app.data import Results
    from app.guard import ALLOWED_HOSTS_ENV, allowed_hosts, install_callback_guard, install_host_check
    from app.kinds import load_kind_views
    from app.launcher import Launcher

    res = Results(results_dir or os.environ.get("CULTURESIM_RESULTS", "results"))
    app = dash.Dash(__name__, use_pages=True, pages_folder="", suppress_callback_exceptions=True, title=title,
                    assets_folder=str(Path(__file__).parent / "assets"), update_title=None)
    app.server.config["CULTURESIM_RESULTS"] = res
    app.server.config["CULTURESIM_LAUNCHER"] = Launcher(res, allow_key_env=allow_key_env,
                                                                measure_embedder=_measure_spec(measure_embedder))
    if hosts is None:
        hosts = allowed_hosts(extra=os.environ.get(ALLOWED_HOSTS_ENV, "").split(","))
    install_host_check(app.server, hosts)
    load_kind_views()
    warm = threading.Event()
    threading.Thread(target=_warm_imports, args=(warm,), name="culturesim-app-warm", daemon=True).start()
    install_callback_guard(app, warm)
    for module in page_modules():
        module.register(app)

    nav = [p for p in dash.page_registry.values() if p.get("nav", True)]
    nav.sort(key=lambda p: p.get("order") or 0)
    app.layout = html.Div([
        dcc.Location(id="cs-url"),
        html.Header(className="cs-header", children=[
            html.Span("culturesim", className="cs-brand"),
            html.Nav([dcc.Link(p["name"], href=p["relative_path"], id=f"nav-{p['module'].rsplit('.', 1)[-1]}",
                               className="cs-nav") for p in nav]),
            html.Span(str(res.root), className="cs-root", title="results folder"),
        ]),
        html.Main(dash.page_container, className="cs-main"),
    ])

    # the nav keeps the run you are looking at when you switch pages
    @app.callback([Output(f"nav-{p['module'].rsplit('.', 1)[-1]}", "href") for p in nav], Input("cs-url", "search"))
    def _keep_run(search):
        from urllib.parse import parse_qs

        run = (parse_qs((search or "").lstrip("?")).get("run") or [None])[0]
        from app.ui import href

        return [href(p["relative_path"], run=run) if p.get("keeps_run", True) else p["relative_path"] for p in nav]

    return app
