"""Cost and budget (culturesim/llm/cost.py): tokens per model in the manifest, an estimated
cost from litellm's price table, and ``llm.max_total_tokens``, which stops a run cleanly
after the step that reaches it, as ``interrupted`` and resumable with a higher cap.

Token counts are worked out here from what the ``echo/`` backend answers: its prompt tokens
are the words of the messages sent (the prompts table) and its completion tokens the words
of its reply (the idea's text), so each step's tokens can be summed without the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from culturesim import cli, runner
from culturesim import scenario as sc
from culturesim.llm import door
from culturesim.llm.backends.echo import Echo
from culturesim.llm.cost import Usage, price, served_models, summary
from culturesim.manifest import Manifest
from culturesim.store import RunDir, RunError

OLD_RUNS = Path(__file__).resolve().parent / "data" / "runs_v0_1"
STEPS = 5
VOLATILE = ("latency_s", "cached")


def scenario_file(tmp_path: Path, run_id: str, **llm) -> Path:
    data = {
        "kind": "culture", "name": "budget", "seed": 4, "steps": STEPS,
        "population": {"size": 4}, "network": {"topology": "ring", "params": {"k": 1}},
        "llm": {"model": "echo/x", **llm}, "culture": {"update": "synchronous", "operation": "combine"},
        "output": {"run_id": run_id},
    }
    path = tmp_path / f"{run_id}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tokens_by_hand(run: RunDir) -> dict[int, tuple[int, int]]:
    """(prompt, completion) tokens per step, as the echo backend counts them: words."""
    prompt: dict[int, int] = {}
    completion: dict[int, int] = {}
    for row in run.prompts().iter_rows(named=True):
        words = sum(len(m["content"].split()) for m in json.loads(row["messages"]))
        prompt[row["step"]] = prompt.get(row["step"], 0) + words
    for row in run.ideas().iter_rows(named=True):
        completion[row["step"]] = completion.get(row["step"], 0) + len(row["text"].split())
    return {step: (prompt[step], completion[step]) for step in sorted(prompt)}


def cumulative(per_step: dict[int, tuple[int, int]]) -> dict[int, int]:
    total, out = 0, {}
    for step, (p, c) in per_step.items():
        total += p + c
        out[step] = total
    return out


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple[RunDir, dict[int, tuple[int, int]]]:
    """One uncapped run: the reference for the capped ones (which share its reply cache)."""
    tmp = tmp_path_factory.mktemp("cost")
    run = runner.start(sc.load(scenario_file(tmp, "whole")), out=tmp / "results", show_progress=False)
    return run, tokens_by_hand(run)


def test_the_manifest_holds_tokens_per_model_as_counted_by_hand(whole):
    run, per_step = whole
    manifest = Manifest.model_validate(run.read_manifest())
    prompt = sum(p for p, _ in per_step.values())
    completion = sum(c for _, c in per_step.values())
    assert manifest.usage["echo/x"].model_dump() == {
        "requests": 4 * STEPS, "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": 0.0}
    assert manifest.stop_reason is None and manifest.status == "done"


@pytest.mark.parametrize("over", [1, 0], ids=["crossing", "reaching"])
def test_the_cap_stops_after_the_step_that_reaches_it_and_resume_continues(whole, tmp_path, over):
    reference, per_step = whole
    cum = cumulative(per_step)
    cap = cum[2] - over if over else cum[2]  # step 1 stays under it; step 2 crosses or lands on it
    assert cum[1] < cap <= cum[2]
    root = reference.path.parent  # the same results folder: replies come from the cache
    run = runner.start(sc.load(scenario_file(tmp_path, f"cap{over}", max_total_tokens=cap)), out=root,
                       show_progress=False)
    manifest = run.read_manifest()
    assert manifest["status"] == "interrupted" and manifest["steps_completed"] == 2
    assert run.completed_steps() == [1, 2]
    assert manifest["stop_reason"] == (f"token budget: {cum[2]} tokens used by step 2, "
                                       f"llm.max_total_tokens is {cap}")
    usage = manifest["usage"]["echo/x"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == cum[2]

    with pytest.raises(RunError, match="stopped at its token budget"):  # the same cap: nothing to do
        runner.resume(run.path, show_progress=False)
    runner.resume(run.path, show_progress=False, max_total_tokens=cum[3] + 1)  # crossed at step 4
    manifest = run.read_manifest()
    assert (manifest["status"], manifest["steps_completed"]) == ("interrupted", 4)
    assert manifest["scenario"]["llm"]["max_total_tokens"] == cum[3] + 1 == manifest["llm"]["max_total_tokens"]
    runner.resume(run.path, show_progress=False, max_total_tokens=None)
    manifest = run.read_manifest()
    assert manifest["status"] == "done" and manifest["stop_reason"] is None
    assert [s["from_step"] for s in manifest["sessions"]] == [1, 3, 5]
    assert manifest["usage"] == reference.read_manifest()["usage"]
    for table in ("ideas", "prompts"):
        mine = pl.read_parquet(run.path / f"{table}.parquet").drop(VOLATILE, strict=False).drop("run_id")
        theirs = pl.read_parquet(reference.path / f"{table}.parquet").drop(VOLATILE, strict=False).drop("run_id")
        assert mine.equals(theirs), table


def test_a_cap_crossed_at_the_last_step_finishes_the_run(whole, tmp_path):
    reference, per_step = whole
    cap = cumulative(per_step)[STEPS]
    run = runner.start(sc.load(scenario_file(tmp_path, "last", max_total_tokens=cap)),
                       out=reference.path.parent, show_progress=False)
    assert run.read_manifest()["status"] == "done"


def test_the_cli_stops_with_its_own_exit_code_and_lists_tokens_and_cost(whole, tmp_path, capsys):
    reference, per_step = whole
    cum = cumulative(per_step)
    root = reference.path.parent
    path = scenario_file(tmp_path, "cli")
    assert cli.main(["run", str(path), "--out", str(root), "-q", "--max-total-tokens", str(cum[1])]) == cli.EXIT_BUDGET
    err = capsys.readouterr().err
    assert f"token budget: {cum[1]} tokens used by step 1" in err and "--max-total-tokens N" in err
    assert cli.main(["run", "--resume", str(root / "cli"), "-q"]) == cli.EXIT_BAD_INPUT
    assert "stopped at its token budget" in capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tokens" in out and "cost" in out and f"{cum[STEPS]:,}" in out and "$0.0000" in out
    assert f"stopped: cli: token budget: {cum[1]} tokens" in out
    assert cli.main(["run", "--resume", str(root / "cli"), "-q", "--max-total-tokens", "none"]) == 0
    assert RunDir(root / "cli").read_manifest()["status"] == "done"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", str(path), "--max-total-tokens", "0"])
    assert exit_.value.code == 2 and "give a number of tokens >= 1, or none" in capsys.readouterr().err


def test_a_hosted_model_is_priced_from_litellms_table(tmp_path, monkeypatch):
    """A hosted model string, answered by the echo backend in its place: the run's estimated
    cost is its tokens at litellm's own prices for that model."""
    monkeypatch.setattr(door, "backend_for", lambda spec, **_: Echo(spec))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    model = "openai/gpt-4o-mini"
    run = runner.start(sc.load(scenario_file(tmp_path, "hosted", model=model)), out=tmp_path / "r",
                       show_progress=False)
    prompt, completion = (sum(x) for x in zip(*tokens_by_hand(run).values(), strict=True))
    table = litellm.model_cost["gpt-4o-mini"]
    expected = prompt * table["input_cost_per_token"] + completion * table["output_cost_per_token"]
    usage = run.read_manifest()["usage"][model]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    assert usage["cost_usd"] == pytest.approx(expected, rel=1e-9) and expected > 0
    assert summary(run.read_manifest())[1] == f"${expected:.4f}"


def test_local_models_and_own_servers_cost_nothing_and_unknown_prices_say_so():
    rows = [{"model": m, "prompt_tokens": 1000, "completion_tokens": 500}
            for m in ("local/smollm2", "echo/x", "openai/gpt-4o-mini", "openai/no-such-model-at-all")]
    scenario = {"llm": {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:8000/v1"}}
    usage = Usage(served_models(scenario))
    usage.add(rows + [{"model": None, "prompt_tokens": 7, "completion_tokens": 7}])  # a seed idea: no model
    table = usage.as_manifest()
    assert {m: e["cost_usd"] for m, e in table.items()} == {
        "echo/x": 0.0, "local/smollm2": 0.0, "openai/gpt-4o-mini": 0.0, "openai/no-such-model-at-all": None}
    assert usage.total_tokens == 4 * 1500
    assert price("openai/no-such-model-at-all", 1, 1, set()) is None
    assert summary({"usage": table}) == ("echo/x: 1,500; local/smollm2: 1,500; openai/gpt-4o-mini: 1,500; "
                                         "openai/no-such-model-at-all: 1,500", "?")


def test_a_run_on_a_local_model_never_imports_litellm(tmp_path):
    import subprocess
    import sys

    path = scenario_file(tmp_path, "light")
    code = (f"import sys; from culturesim import runner, scenario as sc; "
            f"runner.start(sc.load({str(path)!r}), out={str(tmp_path / 'r')!r}, show_progress=False); "
            f"print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_old_manifests_without_usage_still_read_and_list(capsys):
    for name in ("culture-v0", "gard-v0"):
        raw = json.loads((OLD_RUNS / name / "manifest.json").read_text())
        manifest = Manifest.model_validate(raw)
        assert manifest.usage == {} and manifest.stop_reason is None
    assert summary(json.loads((OLD_RUNS / "culture-v0" / "manifest.json").read_text())) == ("1,225", "")
    assert cli.main(["runs", str(OLD_RUNS)]) == 0
    assert "1,225" in capsys.readouterr().out


def test_the_app_lists_tokens_cost_and_why_a_run_stopped(whole, tmp_path):
    pytest.importorskip("dash")
    from app.data import Results
    from app.pages import runs as runs_page

    reference, per_step = whole
    cum = cumulative(per_step)
    runner.start(sc.load(scenario_file(tmp_path, "app", max_total_tokens=cum[1])), out=tmp_path / "res",
                 show_progress=False)
    [entry] = Results(tmp_path / "res").listing()
    row = entry.as_row()
    assert (row["tokens"], row["cost"]) == (f"{cum[1]:,}", "$0.0000")
    assert {"tokens", "cost"} <= set(runs_page.COLUMNS)
    status = runs_page._cell("status", {**row, "stale": ""})
    assert any(f"token budget: {cum[1]} tokens used by step 1" in str(part.children) for part in status[1:])
