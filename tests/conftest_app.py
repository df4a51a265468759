"""Fixtures for the app's tests: a results folder of real runs, and headless Chromium.

The runs are made by the real runner with the ``echo/`` stand-in model (instant and
deterministic) and measured with the TF-IDF embedder, so each test session builds its
own in a few seconds. Test modules import what they use from here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EVIL = '<b>bold</b><img src="x" onerror="window.__pwned=1"><script>window.__pwned=2</script> & done'


def make_run(out: Path, run_id: str, *overrides: str):
    from culturesim import runner
    from culturesim import scenario as sc

    loaded = sc.load(QUICKSTART, ["llm.model=echo/x", "steps=4", "population.size=8", f"output.run_id={run_id}",
                                  *overrides])
    return runner.start(loaded, out=out, base_dir=QUICKSTART.parent, show_progress=False)


def make_sweep(folder: Path) -> list[str]:
    """A 2-cell x 3-replicate sweep, each run executed in this process (no pool to spawn)."""
    from culturesim import scenario as sc
    from culturesim.sweep import Sweep, execute

    text = QUICKSTART.read_text() + "\nsweep:\n  grid:\n    culture.operation: [combine, transform]\n  replicates: 3\n"
    path = folder.parent / "sweep-scenario.yaml"
    path.write_text(text.replace("output:\n  dir: results", f"output:\n  dir: {folder.parent}"))
    loaded = sc.load(path, ["llm.model=echo/x", "steps=4", "population.size=6"])
    sweep = Sweep(loaded, folder, base_dir=QUICKSTART.parent)
    sweep.prepare()
    for spec in sweep.runs:
        run_id, state, error = execute(spec, str(folder), {})
        assert state == "done", error
    sweep.write_index()
    return [f"{folder.name}/{spec.run_id}" for spec in sweep.runs]


def measure(path: Path) -> None:
    from analysis.analyze import analyze_run
    from analysis.embeddings import TfidfEmbedder
    from culturesim.store import RunDir

    analyze_run(RunDir(path), TfidfEmbedder())


def copy_run(root: Path, source: str, target: str) -> Path:
    dest = root / target
    shutil.copytree(root / source, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["run_id"] = target
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def build_results(root: Path) -> dict:
    """alpha (measured run), grid-sweep (measured sweep), evil (HTML in an idea), broken
    (truncated ideas.parquet), and a symlink 'outside' pointing out of the folder."""
    root.mkdir(parents=True, exist_ok=True)
    make_run(root, "alpha")
    measure(root / "alpha")
    sweep_runs = make_sweep(root / "grid-sweep")
    for rid in sweep_runs:
        measure(root / rid)
    evil = copy_run(root, "alpha", "evil")
    ideas = pl.read_parquet(evil / "ideas.parquet")
    ideas = ideas.with_columns(pl.when(pl.col("idea_id") == "s2-a1").then(pl.lit(EVIL)).otherwise(pl.col("text"))
                               .alias("text"))
    ideas.write_parquet(evil / "ideas.parquet")
    broken = copy_run(root, "alpha", "broken")
    data = (broken / "ideas.parquet").read_bytes()
    (broken / "ideas.parquet").write_bytes(data[: len(data) // 2])
    outside = root.parent / "outside-run"
    shutil.copytree(root / "alpha", outside)
    (root / "outside").symlink_to(outside, target_is_directory=True)
    return {"root": root, "sweep_runs": sweep_runs}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> dict:
    return build_results(tmp_path_factory.mktemp("app") / "results")


def chrome_options():
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    # headless, as root, and quiet on a closed network (no update, sync or safe-browsing calls)
    for arg in ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--disable-sync", "--disable-extensions", "--no-first-run", "--metrics-recording-only",
                "--disable-features=Translate,OptimizationHints,MediaRouter", "--window-size=1400,1000"):
        opts.add_argument(arg)
    return opts


def need_browser() -> None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("browser tests need Debian's chromium and chromium-driver (/usr/bin/chromium, "
                    "/usr/bin/chromedriver): apt-get install -y chromium chromium-driver")


@pytest.fixture(scope="module")
def browser_app(results_dir, tmp_path_factory):
    """One app and one headless Chromium for a module's tests (starting Chromium costs seconds)."""
    need_browser()
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    from app import create_app

    app = create_app(results_dir["root"])
    download = tmp_path_factory.mktemp("downloads")
    with ThreadedRunner() as server, DashComposite(server=server, browser="Chrome", headless=True,
                                                   options=[chrome_options()], download_path=str(download),
                                                   percy_run=False, wait_timeout=20) as duo:
        duo.start_server(app)
        duo.download_dir = download
        yield duo


# --- reading rendered Dash trees (shared by the app's section tests) ---------------------

def walk(component):
    """Every component and every text in a Dash component tree."""
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if isinstance(child, str):
            yield child
        elif child is not None and not isinstance(child, (int, float)):
            yield from walk(child)


def section_graph(component, prefix: str):
    """The dcc.Graph of a section plot (its pattern-matching id) inside ``component``."""
    from dash import dcc

    from app.sections import GRAPH, section_id

    return next(c for c in walk(component) if isinstance(c, dcc.Graph) and c.id == section_id(GRAPH, prefix))


def section_csv(component, prefix: str) -> pl.DataFrame:
    """The data a section plot offers as CSV (its ``data:`` link), read back."""
    import io
    from urllib.parse import unquote

    from dash import html

    link = next(c for c in walk(component) if isinstance(c, html.A) and getattr(c, "id", None) == f"{prefix}-csv-link")
    head, _, body = link.href.partition(",")
    assert head == "data:text/csv;charset=utf-8" and link.download == f"{prefix}.csv"
    return pl.read_csv(io.StringIO(unquote(body)))
