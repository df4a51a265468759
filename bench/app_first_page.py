"""Time to the first page of the app on a run of 100,000 ideas (budget: 2 s).

Builds a results folder with one finished run of ``--agents`` x ``--steps`` ideas
(default 1,000 x 100), written with culturesim.store's writers as the runner would, then
starts the app and measures, in headless Chromium, the time from asking for a page to
that page showing its content, on a cold app (nothing cached) and then warm:

- Runs (``/``): the table with the run's row;
- Diversity (``/diversity?run=big``): the curves of the run's metrics.parquet drawn (its data
  callback answered). The ideas are generated text (random words of a 26-word list, seeded),
  and the metrics are generated too (every metric ``culturesim run`` writes, at each step,
  seeded random values): what is timed is the page reading and drawing them, not measuring
  100,000 ideas (minutes with MiniLM; ``culturesim run`` does that once, when the run ends);
- Ideas (``/ideas?run=big``): the first 50 ideas of the 100,000;
- Network (``/network?run=big``): 1,000 agents drawn at the last step.

Without /usr/bin/chromium it times the server side alone (layout and callbacks in a
request context) and says so.

    python bench/app_first_page.py [--agents 1000] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from culturesim.store import IDEAS_SCHEMA, RunDir  # noqa: E402

BUDGET_S = 2.0
WORDS = ("fox river lantern sailor clock tower lemon tree storm harbour child map bridge winter song garden "
         "stone letter moon baker dream mirror island forest train key").split()


def build(root: Path, agents: int, steps: int) -> RunDir:
    rng = np.random.default_rng(0)
    run = RunDir(root / "big")
    run.path.mkdir(parents=True)
    pl.DataFrame({"agent_id": list(range(agents)), "personality": [["creative", "not_creative"][a % 2]
                                                                   for a in range(agents)]}).write_parquet(
        run.path / "agents.parquet")
    ring = [(a, (a + d) % agents) for a in range(agents) for d in (1, 2)]
    pl.DataFrame(ring, schema={"source": pl.Int64, "target": pl.Int64}, orient="row").write_parquet(
        run.path / "edges.parquet")
    for step in range(1, steps + 1):
        lengths = rng.integers(6, 16, size=agents)
        words = rng.integers(len(WORDS), size=(agents, 16))
        rows = []
        for a in range(agents):
            parents = [] if step == 1 else [f"s{step - 1}-a{(a + d) % agents}" for d in (0, 1, -1)]
            rows.append({k: None for k in IDEAS_SCHEMA} | {
                "run_id": "big", "step": step, "agent_id": a, "idea_id": f"s{step}-a{a}",
                "text": " ".join(WORDS[w] for w in words[a, : lengths[a]]).capitalize() + ".",
                "parent_ids": parents, "operation": "combine" if step > 1 else "create", "source": "llm",
                "model": "echo/bench", "seed": int(step * agents + a), "cached": False})
        run.write_step(step, rows, [])
    run.compact()
    write_metrics(run, steps, rng)
    run.write_manifest({"run_id": "big", "kind": "culture", "name": "bench", "status": "done", "steps_total": steps,
                        "steps_completed": steps, "first_step": 1, "llm": {"model": "echo/bench"},
                        "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T00:10:00+00:00",
                        "counts": {"ideas": agents * steps}})
    return run


METRICS = ("diversity", "vendi_score", "centroid_distance", "homogenization", "distinct_2", "compression_ratio",
           "cluster_count", "cluster_entropy", "n_ideas", "mean_chars", "mean_sentiment", "surviving_lineages")


def write_metrics(run: RunDir, steps: int, rng: np.random.Generator) -> None:
    """A metrics.parquet as culturesim run's measuring writes it (tidy rows, MiniLM), with
    generated values: one row per step and metric, plus the diversity slope."""
    rows = [{"step": step, "metric": metric, "value": float(rng.random())}
            for step in range(1, steps + 1) for metric in METRICS]
    rows.append({"step": None, "metric": "diversity_slope", "value": -0.001})
    pl.DataFrame(rows, schema={"step": pl.Int64, "metric": pl.String, "value": pl.Float64}).with_columns(
        pl.lit("big").alias("run_id"), pl.lit("bench").alias("name"), pl.lit("culture").alias("kind"),
        pl.lit("minilm").alias("embedder")).write_parquet(run.path / "metrics.parquet")


PAGES = [
    ("Runs", "/",
     "return [...document.querySelectorAll('#runs-table tbody tr')].some(r => r.innerText.startsWith('big'))"),
    ("Diversity", "/diversity?run=big",
     "const gd = document.querySelector('#div-graph .js-plotly-plot');"
     "return !!(gd && gd._fullData && gd._fullData.filter(t => (t.x || []).length > 0).length >= 2)"),
    ("Ideas", "/ideas?run=big", "return document.querySelectorAll('#ideas-table tbody tr').length === 50"),
    ("Network", "/network?run=big",
     "const gd = document.querySelector('#net-graph .js-plotly-plot');"
     "return !!(gd && gd._fullData && gd._fullData.some(t => (t.x || []).length >= 1000))"),
]


def in_browser(root: Path) -> list[tuple[str, float, float]]:
    from conftest import free_port
    from conftest_app import chrome_options
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    from app import create_app

    app = create_app(root, measure_embedder="off")  # the run is measured: nothing to start anyway
    timings = []
    with ThreadedRunner() as server, DashComposite(server=server, browser="Chrome", headless=True,
                                                   options=[chrome_options()], percy_run=False) as duo:
        duo.start_server(app, navigate=False, port=free_port())
        url = server.url.rstrip("/")
        duo.driver.get(url + "/launch")  # the browser's own start and the shared JS bundles, not what we time
        settle(duo)
        for name, path, ready in PAGES:
            times = []
            for _ in range(2):  # cold (first time this app serves it), then warm
                duo.driver.get("about:blank")
                start = time.perf_counter()
                duo.driver.get(url + path)
                while not duo.driver.execute_script(ready):
                    if time.perf_counter() - start > 30:
                        raise SystemExit(f"{name}: not ready after 30 s")
                    time.sleep(0.01)
                times.append(time.perf_counter() - start)
                settle(duo)
            timings.append((name, *times))
    return timings


def settle(duo, timeout: float = 60) -> None:
    """Let the page's other callbacks (the idea map, say) finish before the next load, so a
    measurement never shares the server with the previous page's leftovers."""
    start = time.perf_counter()
    while not duo._wait_for_callbacks() and time.perf_counter() - start < timeout:
        time.sleep(0.05)
    time.sleep(0.3)


def server_side(root: Path) -> list[tuple[str, float, float]]:
    from app import create_app
    from app.pages import diversity, ideas, network, runs

    app = create_app(root, measure_embedder="off")
    steps = {"Runs": lambda: (runs.layout(), app.server.config["CULTURESIM_RESULTS"].listing()),
             "Diversity": lambda: (diversity.layout(run="big"),
                                   diversity.figure(diversity.data(["big"], None, "run", "minilm"), ["big"], None,
                                                    "run", "minilm")),
             "Ideas": lambda: (ideas.layout(run="big"), ideas.ideas_table("big", None, None, 0)),
             "Network": lambda: (network.layout(run="big"), network.figure(network.data("big", None, "cluster"),
                                                                           "big", None, "cluster"))}
    timings = []
    with app.server.test_request_context():
        for name, work in steps.items():
            times = []
            for _ in range(2):
                start = time.perf_counter()
                work()
                times.append(time.perf_counter() - start)
            timings.append((name, *times))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        start = time.perf_counter()
        run = build(root, args.agents, args.steps)
        n = pl.read_parquet(run.path / "ideas.parquet").height
        print(f"built a run of {n:,} ideas in {time.perf_counter() - start:.1f} s")
        browser = Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()
        timings = in_browser(root) if browser else server_side(root)
        where = "headless Chromium, request to content shown" if browser else "server side only (no chromium)"
        print(f"time to page ready ({where}); budget {BUDGET_S:.1f} s")
        for name, cold, warm in timings:
            print(f"  {name:8s} cold {cold:6.2f} s ({cold / BUDGET_S:4.2f} of budget)   warm {warm:6.2f} s")
        first = timings[0][1]
        diversity = dict((name, cold) for name, cold, _ in timings)["Diversity"]
        print(json.dumps({"ideas": n, "first_page_s": round(first, 3), "ratio_to_budget": round(first / BUDGET_S, 3),
                          "first_diversity_s": round(diversity, 3),
                          "diversity_ratio_to_budget": round(diversity / BUDGET_S, 3),
                          "within_budget": max(first, diversity) < BUDGET_S}))


if __name__ == "__main__":
    main()
