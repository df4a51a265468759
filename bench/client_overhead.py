"""Client overhead: culturesim's whole step versus a raw asyncio ``openai`` client.

A FAKE OpenAI-compatible server (culturesim/testing/fakeserver.py: instant fixed replies,
nothing generated) runs in its own process on loopback. For each population size N,
one culture step (step 1: every agent combines its neighbours' seed ideas) runs
through culturesim: compose N requests, ``LLM.generate`` them, adopt the replies, write
the step's Parquet files. Then the very requests that step sent are sent again by a
plain ``AsyncOpenAI`` client at the same concurrency (one client, one pool, a
semaphore, ``asyncio.gather``). Both alternate ``--reps`` times after a warm-up; the
medians are compared, so both see the same machine load.

Two raw baselines: ``raw openai`` is the client as it comes (its default httpx pool,
``chat.completions.create``), which is what the issue asks to compare with;
``raw same-client`` is the same client on the HTTP client culturesim's fast path gives
it (openai's ``DefaultAioHttpClient``: culturesim/llm/backends/openai_fast.py) making the
same ``post`` call, which isolates what culturesim itself adds (composing, Reply
objects, retry bookkeeping, recording, Parquet). Both
wall-clock rates and client CPU per agent (``time.process_time``; the server runs in
another process) are printed: on a shared 2-core machine the CPU figure is the
steadier one.

    python bench/client_overhead.py [--sizes 1 100 1000] [--concurrency 64] [--reps 5]
                                    [--litellm] [--profile 1000]

``--litellm`` also times the step with the fast path off (every call through
litellm, as before), for the before/after figure. ``--profile N`` prints cProfile's
top functions of culturesim's step at size N.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openai.types.chat import ChatCompletion

from culturesim import scenario as sc
from culturesim.kinds.contract import Door
from culturesim.kinds.culture.model import CultureModel
from culturesim.kinds.culture.schema import CultureScenario
from culturesim.llm.client import LLM, event_loop
from culturesim.store import RunDir

SEED_IDEAS = [
    "A lighthouse keeper finds a message in a bottle addressed to her grandmother.",
    "Two rival bakers discover they have been using the same secret recipe for years.",
    "A child teaches a robot to whistle, and the robot teaches the town to listen.",
]


def scenario_for(n: int, base_url: str, concurrency: int, provider: str) -> CultureScenario:
    network = {"topology": "scale_free", "params": {"m": 2}} if n > 2 else {"topology": "complete"}
    return sc.validate_data({
        "kind": "culture", "name": f"overhead-{n}", "seed": 7, "steps": 1,
        "population": {"size": n, "mix": {"creative": 0.5, "not_creative": 0.5}},
        "network": network,
        "llm": {"model": f"{provider}/fake", "api_base": base_url, "concurrency": concurrency, "cache": False,
                "max_tokens": 48, "retries": 0},
        "culture": {"update": "synchronous", "operation": "combine", "seed_ideas": SEED_IDEAS},
    }, "bench")


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "culturesim.testing.fakeserver"], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Culturesim:
    """One step of a fresh model, from composing requests to the step's Parquet files."""

    def __init__(self, scenario, fast_path: bool):
        self.scenario = scenario
        self.graph = CultureModel.build_graph(scenario)
        self.llm = LLM(scenario.llm, fast_path=fast_path)
        self.sent: list = []

    def prepare(self) -> CultureModel:
        model = CultureModel(self.scenario, self.graph, Door.of(self.generate), "bench")
        model.step()  # step 0: seed ideas, no model call
        return model

    def generate(self, requests):
        self.sent = list(requests)
        return self.llm.generate(requests)

    def step(self, model: CultureModel, out: Path) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        record = model.step()
        ideas, prompts = record.ideas, record.prompts
        RunDir(out).write_step(1, ideas, prompts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(ideas) == self.scenario.population.size and not any(r["error"] for r in ideas), ideas[:1]
        return wall, cpu


class Raw:
    """The same requests through a bare AsyncOpenAI client at the same concurrency."""

    def __init__(self, base_url: str, concurrency: int, http_client=None, post: bool = False):
        import httpx2
        import openai

        self.concurrency = concurrency
        self.post = post
        limits = httpx2.Limits(max_connections=4096, max_keepalive_connections=4096)
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0,
                                         http_client=http_client or openai.DefaultAsyncHttpxClient(limits=limits))

    async def _all(self, requests) -> list[str]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(req):
            async with gate:
                body = {"model": "fake", "messages": list(req.messages), "temperature": req.temperature,
                        "top_p": req.top_p, "max_tokens": req.max_tokens, "seed": req.seed}
                if req.stop:
                    body["stop"] = list(req.stop)
                if self.post:
                    out = await self.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                else:
                    out = await self.client.chat.completions.create(**body)
                return out.choices[0].message.content

        return await asyncio.gather(*(one(r) for r in requests))

    def step(self, requests) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        texts = event_loop().run_until_complete(self._all(requests))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(texts)
        return wall, cpu


def measure(n: int, args, base_url: str, raws: dict[str, Raw], server_pid: int) -> dict:
    ours = Culturesim(scenario_for(n, base_url, args.concurrency, args.provider), fast_path=True)
    via_litellm = Culturesim(scenario_for(n, base_url, args.concurrency, args.provider), fast_path=False) \
        if args.litellm else None
    times: dict[str, list[tuple[float, float]]] = {"culturesim": [], **{k: [] for k in raws}, "litellm": []}
    server_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps + 1):  # rep 0 warms pools and caches
            got = {"culturesim": ours.step(ours.prepare(), Path(tmp) / f"a{rep}")}
            requests = ours.sent
            for name, raw in raws.items():
                cpu0 = cpu_seconds(server_pid)
                got[name] = raw.step(requests)
                server_cpu.append((cpu_seconds(server_pid) - cpu0) / len(requests))
            if via_litellm:
                got["litellm"] = via_litellm.step(via_litellm.prepare(), Path(tmp) / f"b{rep}")
            if rep:
                for name, t in got.items():
                    times[name].append(t)
    out = {"n": n, "server_cpu_ms": statistics.median(server_cpu) * 1e3}
    for name, ts in times.items():
        if ts:
            out[name] = (n / statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts) / n * 1e3)
    return out


def profile(n: int, args, base_url: str) -> None:
    ours = Culturesim(scenario_for(n, base_url, args.concurrency, args.provider), fast_path=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours.step(ours.prepare(), Path(tmp) / "warm")
        model = ours.prepare()
        prof = cProfile.Profile()
        prof.enable()
        ours.step(model, Path(tmp) / "prof")
        prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("culturesim|store|polars", 30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--provider", default="hosted_vllm", choices=["hosted_vllm", "openai"])
    ap.add_argument("--litellm", action="store_true", help="also time the step with every call through litellm")
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    args = ap.parse_args()
    proc, base_url = start_server()
    raws: dict[str, Raw] = {}
    try:
        if args.profile:
            profile(args.profile, args, base_url)
            return
        from culturesim.llm.backends.openai_fast import http_client

        raws = {"raw openai": Raw(base_url, args.concurrency),
                "raw same-client": Raw(base_url, args.concurrency, http_client(), post=True)}
        print(f"fake server {base_url} (pid {proc.pid}); {args.provider}; concurrency {args.concurrency}; "
              f"medians of {args.reps} alternating reps; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        print("rate: agent-steps/s (wall clock); cpu: client CPU ms per agent-step (the server is another process);"
              " ratios: culturesim's rate / baseline's rate, and baseline CPU / culturesim CPU")
        for n in args.sizes:
            r = measure(n, args, base_url, raws, proc.pid)
            ours_rate, ours_cpu = r["culturesim"]
            print(f"N={n} (fake server: {r['server_cpu_ms']:.3f} ms CPU per request)")
            for name in ("culturesim", *raws, "litellm"):
                if name not in r:
                    continue
                rate, cpu = r[name]
                label = "culturesim, litellm path" if name == "litellm" else name
                line = f"   {label:<25} rate {rate:8.1f}/s  cpu {cpu:6.3f} ms"
                if name in raws:
                    line += f"   culturesim/{name}: {ours_rate / rate:.3f} (cpu {cpu / ours_cpu:.3f})"
                elif name == "litellm":
                    line += f"   litellm path/raw openai: {rate / r['raw openai'][0]:.3f} " \
                            f"(cpu {r['raw openai'][1] / cpu:.3f})"
                print(line, flush=True)
        for raw in raws.values():
            event_loop().run_until_complete(raw.client.close())
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
