"""``culturesim``: run, resume, validate and list runs; serve the embedded model.

Bad input ends with a one-line message per problem and exit code 2, never a traceback;
heavy imports (litellm, llama.cpp) happen only in the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_BUDGET = 3  # stopped cleanly at llm.max_total_tokens; resumable


def _fail(problems: list[str], code: int = EXIT_BAD_INPUT) -> int:
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return code


@contextmanager
def naming(path: str):
    """Problems found after loading (network, model) still name the scenario file."""
    from culturesim.scenario import ScenarioError

    try:
        yield
    except ScenarioError as exc:
        raise ScenarioError([f"{path}: {p}" for p in exc.problems]) from None


def _confined(args, out: str | Path | None = None) -> None:
    """Under ``--confine`` (scenarios started from the app): relative paths of the scenario
    resolve from its folder too, and the folder written must lie inside the confinement."""
    from culturesim import confine
    from culturesim.scenario import ScenarioError

    conf = confine.active()
    if conf is None:
        return
    confine.set_base_dir(Path(args.file).resolve().parent if getattr(args, "file", None) else None)
    if out is not None and confine.outside(str(out), conf, from_base=False):
        raise ScenarioError([f"{out}: the output folder lies outside the results folder {conf.root}"])


def cmd_validate(args) -> int:
    from culturesim import scenario as sc
    from culturesim.runner import check

    _confined(args)
    loaded = sc.load(args.file, args.set)
    base_dir = Path(args.file).resolve().parent
    with naming(args.file):
        graph, model = check(loaded, base_dir)
    if loaded.sweep is not None:  # every cell, as `sweep --dry-run` checks them
        from culturesim.sweep import expand

        with naming(args.file):
            expand(loaded, args.file, base_dir)
    network = model.network_summary(loaded, graph)
    llm = getattr(loaded, "llm", None)
    roster = getattr(model, "roster", None)  # the agent layer's: each agent's model
    models = Counter(roster.models()) if roster is not None else Counter()
    if len(models) > 1:
        said = "models " + ", ".join(f"{m} ({k} agents)" for m, k in models.items())
    else:
        said = f"model {llm.model}" if llm else "no LLM"
    if args.json:  # what the app shows and starts from, read in its own process
        print(json.dumps({"file": args.file, "kind": loaded.kind, "name": loaded.name, "steps": loaded.steps,
                          "sweep": loaded.sweep is not None, "agents": graph.number_of_nodes(),
                          "network": network, "model": llm.model if llm else None, "models": dict(models)}))
        return 0
    print(f"{args.file}: ok ({loaded.kind}, {graph.number_of_nodes()} agents, {loaded.steps} steps, "
          f"{network}, {said})")
    return 0


def cmd_run(args) -> int:
    from culturesim import runner
    from culturesim import scenario as sc

    if args.resume:
        if args.file or args.set:
            return _fail(["--resume takes a run folder only; the scenario is the one recorded in it "
                          "(--max-total-tokens changes its token budget)"])
        cap = runner.KEEP if args.max_total_tokens is None else args.max_total_tokens[0]
        run = runner.resume(args.resume, show_progress=not args.quiet, max_total_tokens=cap)
    else:
        if not args.file:
            return _fail(["give a scenario file (culturesim run FILE) or --resume RUN_DIR"])
        overrides = list(args.set or [])
        if args.no_cache:
            overrides.append("llm.cache=false")
        if args.max_total_tokens is not None:
            overrides.append(f"llm.max_total_tokens={args.max_total_tokens[0] or 'null'}")
        _confined(args)
        loaded = sc.load(args.file, overrides)
        _confined(args, args.out if args.out else loaded.output.dir)
        if loaded.sweep is not None:
            return _fail([f"{args.file} declares a sweep: run it with culturesim sweep {args.file} "
                          f"(or run the base scenario alone with --set sweep=null)"])
        with naming(args.file):
            run = runner.start(loaded, out=args.out, base_dir=Path(args.file).resolve().parent,
                               show_progress=not args.quiet)
    print(run.path)
    manifest = run.read_manifest()
    if manifest.get("status") == "done" and _measuring(args):
        _measure_after([run], _measuring(args), quiet=args.quiet)
    reason = manifest.get("stop_reason")
    if reason:
        print(f"stopped: {reason}; continue with: culturesim run --resume {run.path} --max-total-tokens N "
              f"(or none)", file=sys.stderr)
        return EXIT_BUDGET
    return 0


MEASURE_ENV = "CULTURESIM_MEASURE_EMBEDDER"  # the default of --measure-embedder; "off": --no-measure


def _measuring(args) -> str | None:
    """The embedder spec run, sweep and app measure finished runs with, or None when off."""
    spec = args.measure_embedder or os.environ.get(MEASURE_ENV, "").strip() or "best"
    return None if args.no_measure or spec == "off" else spec


def _measure_after(runs: list, embedder: str, *, quiet: bool) -> None:
    """Measure finished runs as ``culturesim analyze`` would (analysis.measure): a failure, or
    analysis not installed, is a line on stderr and recorded in the run's measure.json; the
    run stays done and the exit code is the run's."""
    try:
        # what analyze needs beyond the core: TF-IDF (sklearn) and sentiment (vaderSentiment),
        # both of the analysis extra, which the quickstart's plain install does not have
        import sklearn  # noqa: F401
        import vaderSentiment  # noqa: F401

        from analysis.measure import measure_runs
    except ImportError as exc:
        print(f"note: runs not measured: analysis needs its extra packages ({exc.name}): "
              f"pip install 'culturesim[analysis]'", file=sys.stderr)
        return
    try:
        measure_runs(runs, embedder=embedder, show_progress=not quiet)
    except KeyboardInterrupt:
        print("measuring interrupted; the run is done. Measure it with: culturesim analyze <run folder>",
              file=sys.stderr)


def cmd_measure(args) -> int:
    """``culturesim measure``: what run does at its end, for runs finished without it; the
    app starts it for a finished run it finds unmeasured (once: see analysis.measure)."""
    try:
        from analysis.measure import measure_runs
    except ImportError as exc:
        return _fail([f"measuring needs the analysis extra ({exc.name}): pip install 'culturesim[analysis]'"])
    from culturesim.store import runs_under

    runs = runs_under(args.path)
    if not runs:
        return _fail([f"{args.path}: no run folders here (a run folder has a manifest.json)"])
    finished = [r for r in runs if _status(r) == "done"]
    if args.if_unmeasured:
        finished = [r for r in finished if not (r.path / "metrics.parquet").is_file()]
    outcomes = measure_runs(finished, embedder=args.embedder, show_progress=not args.quiet,
                            only_if_unmeasured=args.if_unmeasured)
    return EXIT_FAILED if any(o.status == "failed" for o in outcomes) else 0


def _status(run) -> str | None:
    from culturesim.store import RunError

    try:
        return run.read_manifest().get("status")
    except RunError:
        return None


def token_cap(value: str) -> list[int | None]:
    """``--max-total-tokens``: a positive number of tokens, or ``none`` for no cap (a list,
    so that "none" is told apart from the flag not given)."""
    if value.strip().lower() == "none":
        return [None]
    try:
        number = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of tokens >= 1, or none")
    return [number]


def cmd_sweep(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from culturesim import scenario as sc
    from culturesim.store import safe_name
    from culturesim.sweep import Sweep, run_sweep

    if args.workers < 1:  # refused before anything is written (sweep.json, run folders)
        return _fail([f"--workers {args.workers}: give at least 1 run at once"])
    _confined(args)
    loaded = sc.load(args.file, args.set)
    # the name made safe as run ids are: a name like ../../x or /tmp/x stays inside output.dir
    folder = Path(args.out) if args.out else Path(loaded.output.dir) / f"{safe_name(loaded.name)}-sweep"
    _confined(args, folder)
    with naming(args.file):
        sweep = Sweep(loaded, folder, where=args.file, base_dir=Path(args.file).resolve().parent)
    if args.dry_run:
        table = Table("cell", *(loaded.sweep.grid if loaded.sweep else []),
                      *(loaded.sweep.zip if loaded.sweep else []), "replicates", "first run id")
        seen = set()
        for spec in sweep.runs:
            if spec.cell in seen:
                continue
            seen.add(spec.cell)
            table.add_row(str(spec.cell), *(json.dumps(v) for v in spec.params.values()),
                          str(loaded.sweep.replicates if loaded.sweep else 1), spec.run_id)
        Console(width=200).print(table)
        done = len(sweep.runs) - len(sweep.pending()) if folder.exists() else 0
        print(f"{len(seen)} cells, {len(sweep.runs)} runs ({done} already done) -> {folder}")
        return 0
    index = run_sweep(sweep, engine=args.engine, workers=args.workers, address=args.address,
                      progress=not args.quiet)
    counts = index["status"].value_counts().sort("status").rows()
    if _measuring(args):
        from culturesim.store import RunDir

        done = [RunDir(folder / rid) for rid, state in zip(index["run_id"], index["status"], strict=True)
                if state == "done"]
        _measure_after(done, _measuring(args), quiet=args.quiet)
    print(f"{folder}: " + ", ".join(f"{n} {state}" for state, n in counts))
    return 0 if set(index["status"]) == {"done"} else EXIT_FAILED


def _steps_in(manifest: dict) -> str:
    """Steps a run will write: a kind that starts at step 0 (exposure's AI pool, GP's first
    population) writes one more than ``steps``."""
    total, first = manifest.get("steps_total"), manifest.get("first_step", 1)
    return str(total - first + 1) if isinstance(total, int) and isinstance(first, int) else "?"


def cmd_runs(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from culturesim.manifest import manifest_problem
    from culturesim.store import list_runs, outside_files, refused_line

    runs = list_runs(args.dir)
    if not runs:
        print(f"no runs in {args.dir}")
        return 0
    from culturesim.llm.cost import summary

    table = Table("run", "kind", "name", "status", "steps", "ideas", "failures", "tokens", "cost", "started",
                  "ended")
    unreadable, stopped = [], []
    for run, m in runs:
        status = str(m.get("status", ""))
        if status == "unreadable":
            unreadable.append(f"unreadable: {m.get('error') or f'{run.manifest_path}: unreadable manifest'}")
        else:
            # a step part, prompt or table linked out of the folder: said on the row, not found
            # out by whoever reads the run next
            outside = outside_files(run.path, args.dir)
            if outside:
                status += ", refused files"
                unreadable.append(refused_line(run.run_id, outside, str(args.dir)))
            problem = manifest_problem(m, listing=True)
            if problem:
                unreadable.append(f"invalid: {run.manifest_path}: {problem}")
        counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
        table.add_row(
            run.run_id, str(m.get("kind", "")), str(m.get("name", "")), status,
            f"{m.get('steps_completed', 0)}/{_steps_in(m)}",
            str(counts.get("ideas", "")), str(counts.get("failures", "")), *summary(m),
            str(m.get("started_at") or ""), str(m.get("ended_at") or ""),
        )
        if m.get("stop_reason") and m.get("status") == "interrupted":
            stopped.append(f"{run.run_id}: {m['stop_reason']}")
    Console(width=200).print(table)
    for line in unreadable:
        print(line)
    for line in stopped:
        print(f"stopped: {line}")
    return 0


def cmd_analyze(args) -> int:
    """The CLI is the one place culturesim reaches into analysis, lazily, as its front door."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    try:
        from analysis.analyze import analyze_run, runs_under, whole_population
        from analysis.embeddings import make_embedder
    except ImportError as exc:
        return _fail([f"analysis needs its extra packages ({exc.name}): pip install 'culturesim[analysis]'"])
    try:
        embedder = make_embedder(args.embedder)
    except ValueError as exc:
        return _fail([str(exc)])
    runs = runs_under(args.path)
    if not runs:
        return _fail([f"{args.path}: no run folders here (a run folder has a manifest.json)"])
    console = Console(stderr=True)
    summary = Table("run", "steps", "diversity first", "diversity last", "slope", "vendi last", "ideas")
    with Progress(console=console, disable=args.quiet or not console.is_terminal) as bar:
        task = bar.add_task("analyzing", total=len(runs))
        for run in runs:
            try:
                table = analyze_run(run, embedder, resample_m=args.resample, repeats=args.repeats, seed=args.seed,
                                    by=args.by)
            except ValueError as exc:
                return _fail([str(exc)])
            bar.advance(task)
            summary.add_row(run.run_id, *_summary_cells(whole_population(table)))
    Console(width=200).print(summary)
    return 0


def _summary_cells(table) -> list[str]:
    import polars as pl

    def series(metric):
        return table.filter(pl.col("metric") == metric).sort("step")["value"].to_list()

    div, vendi, n = series("diversity"), series("vendi_score"), series("n_ideas")
    slope = series("diversity_slope")
    fmt = lambda values, i: f"{values[i]:.3f}" if values else "-"  # noqa: E731
    return [str(len(n)), fmt(div, 0), fmt(div, -1), fmt(slope, 0), fmt(vendi, -1), str(int(sum(n)))]


def cmd_report(args) -> int:
    """The study table of each kind that has one (its ``report``), for the runs under PATH."""
    from culturesim.kinds import get_kind, kind_names
    from culturesim.kinds.spec import ReportOptions
    from culturesim.store import RunError, runs_under

    path = Path(args.path)
    if not path.exists():
        return _fail([f"{path}: no such run or folder"])
    by_kind: dict[str, list] = {}
    for run in runs_under(path):
        try:
            by_kind.setdefault(run.read_manifest().get("kind"), []).append(run)
        except RunError as exc:  # one unreadable run: said, and left out of the tables
            print(f"warning: skipped {exc}", file=sys.stderr)
    reported = [name for name in kind_names() if get_kind(name).report]
    found = [kind for kind in reported if kind in by_kind]
    if not found:
        return _fail([f"{path}: no run of a reported kind here (culturesim report reads runs of kind "
                      f"{' or '.join(reported)})"])
    options = ReportOptions(embedder=args.embedder, judge=args.judge, judge_api_base=args.judge_api_base,
                            seed=args.seed, price_trait=args.price_trait, innovation_form=args.innovation_form,
                            reference=args.reference, plot=args.plot)
    if args.plot and (not args.plot.endswith(".html") or Path(args.plot).is_dir()
                      or not Path(args.plot).resolve().parent.is_dir()):
        return _fail([f"--plot {args.plot}: give an .html file in a folder that exists"])
    plot_before = _stamp(args.plot)
    for kind in found:
        try:
            get_kind(kind).load_report()(path, by_kind[kind], options)
        except ImportError as exc:
            return _fail([f"report needs the analysis extra ({exc.name}): pip install 'culturesim[analysis]'"])
        except ValueError as exc:
            return _fail([str(exc)])
    if args.plot and _stamp(args.plot) == plot_before:
        print(f"warning: --plot {args.plot}: no figure drawn (the {', '.join(found)} report draws none)",
              file=sys.stderr)
    return 0


def _stamp(path: str | None) -> tuple[int, int] | None:
    """A file's (mtime_ns, size), to tell whether a report wrote it."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


def cmd_compare(args) -> int:
    """A sweep's conditions against a baseline: analysis.compare's tables, as the app's Compare shows them."""
    from rich.console import Console
    from rich.table import Table

    try:
        from analysis.compare import CompareError, compare_sweep
    except ImportError as exc:
        return _fail([f"compare needs the analysis extra ({exc.name}): pip install 'culturesim[analysis]'"])
    if not args.no_measure:
        _measure_sweep(args)
    try:
        tables, unmeasured, metric, embedder = compare_sweep(args.sweep, args.metric, summary=args.summary,
                                                             embedder=args.embedder, baseline=args.baseline)
    except CompareError as exc:
        return _fail([str(exc)])
    if unmeasured:
        print(f"warning: {len(unmeasured)} run(s) not measured, left out (culturesim analyze {args.sweep}): "
              f"{', '.join(unmeasured)}", file=sys.stderr)
    console = Console(width=220)
    console.print(f"{args.sweep}: {metric} ({args.summary}), embedder {embedder}, "
                  f"{tables.per_run.height} runs; baseline "
                  + ", ".join(f"{k}={v}" for k, v in tables.baselines.items()))
    for title, frame in (("effect sizes", tables.effects), ("slopes over steps (random intercept per run)",
                                                            tables.slopes)):
        table = Table(*frame.columns, title=title)
        for row in frame.iter_rows():
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
    if args.csv:
        _write_compare_csv(tables, Path(args.csv))
    return 0


def _measure_sweep(args) -> None:
    """Before comparing: measure the finished runs of the sweep that have no metrics.parquet
    yet, as ``culturesim measure --if-unmeasured`` would (same code: :func:`_measure_after`),
    in ``--embedder``'s space (default: best), so a sweep run with ``--no-measure`` or stopped
    before its measuring needs no second command. Runs that are not done stay left out (and
    are named by compare's warning). Not a sweep folder: nothing here, compare says why."""
    from analysis.compare import is_sweep_dir
    from culturesim.store import RunDir

    folder = Path(args.sweep)
    if not folder.is_dir() or not is_sweep_dir(folder):
        return
    runs = [RunDir(p.parent) for p in sorted(folder.glob("*/manifest.json"))]
    todo = [r for r in runs if not (r.path / "metrics.parquet").is_file() and _status(r) == "done"]
    if not todo:
        return
    embedder = args.embedder or "best"
    if not args.quiet:
        print(f"measuring {len(todo)} unmeasured run(s) of {args.sweep} before comparing (embedder {embedder}; "
              f"--no-measure to skip)", file=sys.stderr)
    _measure_after(todo, embedder, quiet=args.quiet)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _write_compare_csv(tables, path: Path) -> None:
    """Both tables in one file: a ``table`` column says which (effects or slopes)."""
    import polars as pl

    parts = [frame.with_columns(pl.lit(name).alias("table")) for name, frame in
             (("effects", tables.effects), ("slopes", tables.slopes)) if not frame.is_empty()]
    out = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    out.select(["table"] + [c for c in out.columns if c != "table"]).write_csv(path)


def _price(argv: list[str]) -> int:
    try:
        from analysis.price import main as price_main
    except ImportError as exc:
        return _fail([f"price needs the analysis extra ({exc.name}): pip install 'culturesim[analysis]'"])
    return price_main(argv)


def importers() -> dict[str, str]:
    """format -> "module:function", from every kind that reads other tools' results."""
    from culturesim.kinds import all_kinds

    return {fmt: path for kind in all_kinds() for fmt, path in kind.importers.items()}


def cmd_import(args) -> int:
    from culturesim.kinds.spec import load

    read = load(importers()[args.format])
    try:
        runs = [read(f, args.out) for f in args.files]
    except ValueError as exc:  # the importer's FormatError: the file is not what it claims
        return _fail([str(exc)])
    for run in runs:
        print(run.path)
    return 0


def cmd_serve(args) -> int:
    """Serve an embedded GGUF model over the OpenAI API, with the AMX fix applied."""
    from culturesim.llm.local import default_threads, disable_extra_buffers, resolve

    disable_extra_buffers()
    path = resolve(args.model)
    sys.argv = ["llama_cpp.server", "--model", str(path), "--host", args.host, "--port", str(args.port),
                "--n_ctx", str(args.n_ctx), "--n_threads", str(args.n_threads or default_threads()),
                "--model_alias", args.alias or args.model, "--embedding", str(args.embedding)]
    from llama_cpp.server.__main__ import main

    main()
    return 0


def vllm_command(args) -> list[str]:
    """The ``vllm serve`` command line for a population's traffic: thousands of short
    requests at once, many sharing a system prompt (a personality)."""
    cmd = ["vllm", "serve", args.model, "--host", args.host, "--port", str(args.port),
           "--served-model-name", args.alias or args.model,
           "--gpu-memory-utilization", str(args.gpu_memory_utilization),
           "--max-model-len", str(args.max_model_len),        # short prompts: room for more sequences
           "--max-num-seqs", str(args.max_num_seqs),          # a generation is one batch
           "--max-num-batched-tokens", str(args.max_num_batched_tokens),
           "--enable-prefix-caching",                         # personalities repeat their system prompt
           "--generation-config", "vllm",                     # the request's sampling, not the model card's
           "--seed", str(args.seed),
           "--tensor-parallel-size", str(args.tensor_parallel_size)]
    extra = list(args.extra)
    return cmd + (extra[1:] if extra[:1] == ["--"] else extra)


def cmd_serve_vllm(args) -> int:
    """Start vLLM's OpenAI-compatible server (or print the command with --dry-run)."""
    import os
    import shlex
    import shutil

    cmd = vllm_command(args)
    line = shlex.join(cmd)
    if args.dry_run:
        print(line)
        return 0
    exe = shutil.which("vllm")
    if exe is None:
        return _fail([f"vllm is not installed here (it needs a CUDA GPU): pip install vllm, then run: {line}"])
    print(f"starting: {line}\npoint a scenario at it with: llm: {{model: hosted_vllm/{args.alias or args.model}, "
          f"api_base: http://{args.host}:{args.port}/v1}}", file=sys.stderr, flush=True)
    os.execv(exe, cmd)
    return 0  # pragma: no cover - execv does not return


def cmd_app(args) -> int:
    """Serve the Dash app over a results folder (dash imported only here)."""
    try:
        from app import create_app
    except ImportError as exc:
        return _fail([f"the app needs dash ({exc.name}): pip install 'culturesim[app]'"])
    folder = Path(args.dir)
    if not folder.is_dir():
        return _fail([f"{folder}: no such results folder"])
    from app.guard import allowed_hosts

    hosts = allowed_hosts(args.host, args.allow_host)
    if args.host.strip("[]") in ("0.0.0.0", "::") and hosts == allowed_hosts():
        print("warning: serving every interface, but only loopback names are accepted in the Host header; "
              "add --allow-host NAME for each name or address clients use", file=sys.stderr)
    embedder = _measuring(args) or "off"
    create_app(folder, allow_key_env=args.allow_key_env, hosts=hosts, measure_embedder=embedder).run(
        host=args.host, port=args.port, debug=False)
    return 0


def _confine_options(command: argparse.ArgumentParser) -> None:
    """What the app passes when it starts a scenario someone pasted (see culturesim.confine)."""
    command.add_argument("--confine", metavar="DIR",
                         help="every file the scenario names must lie inside DIR (symlinks followed)")
    command.add_argument("--allow-key-env", action="append", default=[], metavar="NAME",
                         help="with --confine: an environment variable llm.api_key_env may name (repeatable)")


def _measure_options(command: argparse.ArgumentParser) -> None:
    """run and sweep measure what they finish (analysis.measure) unless told not to."""
    command.add_argument("--no-measure", action="store_true",
                         help="do not measure the finished run(s) (culturesim analyze does it later)")
    command.add_argument("--measure-embedder", metavar="SPEC",
                         help="embedder for that measuring: best (MiniLM if installed, else TF-IDF; default, "
                              f"or ${MEASURE_ENV}), any culturesim analyze --embedder value, or off")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="culturesim", description="Simulate cultural evolution in LLM populations.")
    p.add_argument("--version", action="version", version=f"culturesim {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario, or resume a run")
    run.add_argument("file", nargs="?", help="scenario YAML file")
    run.add_argument("--out", help="results folder (default: the scenario's output.dir)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario key, e.g. steps=5")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last complete step")
    run.add_argument("--no-cache", action="store_true", help="do not read or write the LLM response cache")
    run.add_argument("--max-total-tokens", type=token_cap, metavar="N|none",
                     help="token budget (llm.max_total_tokens); with --resume, replaces the run's own")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _measure_options(run)
    run.set_defaults(func=cmd_run)

    sweep = sub.add_parser("sweep", help="run every cell and replicate of a scenario's sweep block")
    sweep.add_argument("file")
    sweep.add_argument("--out", help="sweep folder (default: <output.dir>/<name>-sweep)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE")
    sweep.add_argument("--workers", type=int, default=1, help="runs at once (default 1)")
    sweep.add_argument("--engine", choices=["local", "ray"], default="local")
    sweep.add_argument("--address", help="Ray cluster to join (e.g. auto); default: start a local Ray")
    sweep.add_argument("--dry-run", action="store_true", help="print the cells and the number of runs")
    sweep.add_argument("-q", "--quiet", action="store_true")
    _measure_options(sweep)
    sweep.set_defaults(func=cmd_sweep)

    val = sub.add_parser("validate", help="check a scenario file without running it")
    val.add_argument("file")
    val.add_argument("--set", action="append", metavar="KEY=VALUE")
    val.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    val.set_defaults(func=cmd_validate)
    for command in (run, sweep, val):
        _confine_options(command)

    runs = sub.add_parser("runs", help="list runs and their status")
    runs.add_argument("dir", nargs="?", default="results")
    runs.set_defaults(func=cmd_runs)

    analyze = sub.add_parser("analyze", help="measure a run (or every run in a folder) into metrics.parquet")
    analyze.add_argument("path", help="a run folder or a folder of runs")
    analyze.add_argument("--embedder", default="minilm",
                         help="minilm (default), tfidf, st:<path>, litellm:<model>[@base]")
    analyze.add_argument("--resample", type=int, metavar="M",
                         help="also report diversity over random subsets of M ideas")
    analyze.add_argument("--repeats", type=int, default=20, help="subsets per step with --resample (default 20)")
    analyze.add_argument("--seed", type=int, default=0)
    analyze.add_argument("--by", choices=["model", "personality"], default=None,
                         help="also measure each model (or personality) of the population apart: rows with a "
                              "'model' (or 'personality') column in metrics.parquet")
    analyze.add_argument("-q", "--quiet", action="store_true")
    analyze.set_defaults(func=cmd_analyze)

    meas = sub.add_parser("measure", help="measure finished runs as culturesim run does at its end "
                                          "(best embedder, one process per run at a time)")
    meas.add_argument("path", help="a run folder or a folder of runs")
    meas.add_argument("--embedder", default="best", help="best (default), or any culturesim analyze --embedder value")
    meas.add_argument("--if-unmeasured", action="store_true", help="leave runs that have metrics.parquet")
    meas.add_argument("-q", "--quiet", action="store_true")
    meas.set_defaults(func=cmd_measure)
    cmp = sub.add_parser("compare", help="a sweep's conditions against a baseline: effect sizes and slopes over steps")
    cmp.add_argument("sweep", help="a sweep folder (made by culturesim sweep; its unmeasured runs are measured first)")
    cmp.add_argument("--metric", help="metric to compare (default: diversity)")
    cmp.add_argument("--baseline", metavar="KEY=VALUE",
                     help="the baseline condition, a swept key and one of its values "
                          "(default: each parameter's first value)")
    cmp.add_argument("--summary", choices=["last", "mean", "run"], default="last",
                     help="each run's value for the effect sizes: last step (default), mean over steps, run-level")
    cmp.add_argument("--embedder", help="the embedding space of the metrics (default: minilm where measured), "
                                        "and the one unmeasured runs are measured in first (default: best)")
    cmp.add_argument("--csv", metavar="FILE", help="also write both tables to FILE (column 'table' says which)")
    cmp.add_argument("--no-measure", action="store_true",
                     help="do not measure the sweep's unmeasured runs first: compare the measured ones only")
    cmp.add_argument("-q", "--quiet", action="store_true", help="no progress output while measuring")
    cmp.set_defaults(func=cmd_compare)

    app = sub.add_parser("app", help="explore runs and sweeps in the browser (Dash app)")
    app.add_argument("dir", nargs="?", default="results", help="results folder (default: results)")
    app.add_argument("--port", type=int, default=8050)
    app.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    app.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                     help="a name clients reach the app by, accepted in the Host header beside 127.0.0.1, "
                          "localhost and --host (repeatable; '*' accepts any, behind a proxy that checks)")
    app.add_argument("--allow-key-env", action="append", default=[], metavar="NAME",
                     help="an environment variable scenarios started from the app may name as llm.api_key_env "
                          "(repeatable); jobs see no other variable of the app's")
    app.add_argument("--no-measure", action="store_true",
                     help="do not measure finished, unmeasured runs in the background when a page opens them")
    app.add_argument("--measure-embedder", metavar="SPEC",
                     help=f"embedder for that measuring: best (MiniLM if installed, else TF-IDF; default, or "
                          f"${MEASURE_ENV}), any culturesim analyze --embedder value, or off")
    app.set_defaults(func=cmd_app)

    # listed for --help; its arguments are parsed by analysis.price (see main)
    sub.add_parser("price", help="exact Price decomposition of your own genealogy (CSV files)", add_help=False)

    rep = sub.add_parser("report", help="the study table of the runs under PATH (a run, folder or sweep), "
                                        "for each kind that has one")
    rep.add_argument("path")
    rep.add_argument("--embedder", default="minilm")
    rep.add_argument("--judge", help="originality judge model (default: the run's own model); 'none' to skip")
    rep.add_argument("--judge-api-base", help="api_base for --judge")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--reference", help="a run, folder of runs or result file, measured the same way and printed "
                                         "beside (for the kinds whose report compares with one)")
    rep.add_argument("--price-trait", default="fitness",
                     help="trait of a kind's Price decomposition of its genealogy (the GP kind: fitness or size)")
    rep.add_argument("--innovation-form", choices=("immigration", "residual"), default="immigration",
                     help="form of the Price innovation term: immigration (default; Kerr & Godfrey-Smith 2009) "
                          "or residual")
    rep.add_argument("--plot", metavar="FILE.html",
                     help="also draw the report's figure in this HTML file, for the kinds whose report draws one "
                          "(each measure over generations, ours beside --reference)")
    rep.set_defaults(func=cmd_report)

    imp = sub.add_parser("import", help="turn results of other tools into run folders")
    imp.add_argument("format", choices=sorted(importers()),
                     help="the format of the files (each kind says which formats it reads)")
    imp.add_argument("files", nargs="+")
    imp.add_argument("--out", default="results")
    imp.set_defaults(func=cmd_import)

    serve = sub.add_parser("serve", help="serve a model over an OpenAI-compatible API")
    serve_sub = serve.add_subparsers(dest="engine", required=True)
    llama = serve_sub.add_parser("llama", help="llama-cpp-python's server for a GGUF file (CPU)")
    llama.add_argument("--model", default="smollm2", help="smollm2 or a path to a .gguf file")
    llama.add_argument("--alias", help="model name clients use (default: the --model value)")
    llama.add_argument("--host", default="127.0.0.1")
    llama.add_argument("--port", type=int, default=8000)
    llama.add_argument("--n-ctx", type=int, default=2048)
    llama.add_argument("--n-threads", type=int, default=None)
    llama.add_argument("--embedding", action="store_true", help="serve /v1/embeddings (not chat) from this model")
    llama.set_defaults(func=cmd_serve)
    vllm = serve_sub.add_parser("vllm", help="vLLM's OpenAI-compatible server on a GPU, tuned for many short requests")
    vllm.add_argument("--model", required=True, help="a Hugging Face model id or local folder")
    vllm.add_argument("--alias", help="model name clients use (default: the --model value)")
    vllm.add_argument("--host", default="127.0.0.1")
    vllm.add_argument("--port", type=int, default=8000)
    vllm.add_argument("--gpu-memory-utilization", type=float, default=0.90)
    vllm.add_argument("--max-model-len", type=int, default=4096)
    vllm.add_argument("--max-num-seqs", type=int, default=512, help="sequences decoded together (default 512)")
    vllm.add_argument("--max-num-batched-tokens", type=int, default=16384)
    vllm.add_argument("--tensor-parallel-size", type=int, default=1)
    vllm.add_argument("--seed", type=int, default=0)
    vllm.add_argument("--dry-run", action="store_true", help="print the vllm command and exit")
    vllm.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more vllm serve arguments, passed as they are")
    vllm.set_defaults(func=cmd_serve_vllm)
    return p


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("culturesim")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    from culturesim.scenario import ScenarioError
    from culturesim.store import RunError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["price"]:
        return _price(argv[1:])
    args = parser().parse_args(argv)
    if getattr(args, "confine", None):  # validate, run, sweep
        from culturesim import confine

        confine.activate(args.confine, args.allow_key_env)
    elif hasattr(args, "confine") and args.allow_key_env:
        return _fail(["--allow-key-env goes with --confine DIR (without it every variable may be named)"])
    try:
        return args.func(args)
    except ScenarioError as exc:
        return _fail(exc.problems)
    except RunError as exc:
        return _fail([str(exc)])
    except KeyboardInterrupt:
        print("interrupted; continue with: culturesim run --resume <run folder>", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a failed run: its manifest already says why
        from culturesim.llm.local import LocalModelError

        code = EXIT_BAD_INPUT if isinstance(exc, LocalModelError) else EXIT_FAILED
        return _fail([f"{type(exc).__name__}: {exc}"], code)


if __name__ == "__main__":
    sys.exit(main())
