"""Read result files of the LLM-Culture software (Perez et al. 2024) into a run folder.

Their ``output{seed}.json`` holds an adjacency matrix, the prompts, one personality per
agent and ``stories[generation][agent]``. Turning it into culturesim's layout lets old
studies be re-measured with `culturesim analyze` and opened in the app. The lineage is
reconstructed from the network: in LLM-Culture an agent at generation g reads the
stories its neighbours wrote at generation g-1, so those are its parents.

Their software writes two shapes of ``stories`` into the same file layout:

- a network run: every generation holds one story per agent, in agent order;
- a chain ("sequence" network): agent g waits g steps, so generation g holds one story,
  agent g's, written from generation g-1's story (and generations after the last agent are
  empty lists, dropped here).

The other files in their results folders are analysis outputs (figures, a generation-similarity
graph ``graph.json``, ``connected_edges_idx.json``, pickled creativity caches ``*.obj``): each is
refused with one line that says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from culturesim.manifest import Counts, Manifest
from culturesim.store import RunDir, RunError

REQUIRED = ("adjacency_matrix", "stories")


class FormatError(ValueError):
    """A file that is not a usable LLM-Culture result; the message says what is missing."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_link_value(v: Any) -> bool:
    """A cell of the adjacency matrix: a number (0: no link) or a boolean. A string such as "0" is not one:
    Python would count it as a link."""
    return isinstance(v, bool) or (isinstance(v, int | float) and math.isfinite(v))


def _check_fields(path: Path, data: dict, n: int) -> None:
    """The fields read one item per agent must be lists: a string would be read one letter per agent."""
    for i, row in enumerate(data["adjacency_matrix"]):
        for j, v in enumerate(row):
            if not _is_link_value(v):
                raise FormatError(f"{path}: adjacency_matrix row {i}, column {j} is {_shown(v)}; a cell must be "
                                  f"a number (0: no link) or true/false")
    personalities = data.get("personality_list")
    if personalities is not None:
        if not isinstance(personalities, list):
            raise FormatError(f"{path}: personality_list must be a list with one personality per agent ({n}), "
                              f"got a {type(personalities).__name__} ({_shown(personalities)})")
        for i, p in enumerate(personalities):
            if p is not None and not isinstance(p, str):
                raise FormatError(f"{path}: personality_list[{i}] must be a string, got {_shown(p)}")
    for key in ("prompt_init", "prompt_update"):
        prompts = data.get(key)
        if prompts is not None and not (isinstance(prompts, list) and all(isinstance(x, str) for x in prompts)):
            raise FormatError(f"{path}: {key} must be a list of strings, got {_shown(prompts)}")


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: a folder; give its output*.json files") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if path.suffix == ".obj":
            raise FormatError(f"{path}: a pickled LLM-Culture analysis cache (creativity indexes), not a result; "
                              f"import the output*.json files of a results folder") from None
        raise FormatError(f"{path}: not JSON ({exc})") from None
    if isinstance(data, dict) and {"nodes", "links"} <= set(data):
        raise FormatError(f"{path}: an LLM-Culture analysis file (a generation-similarity graph), not a result; "
                          f"import the output*.json files of a results folder")
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object with keys {', '.join(REQUIRED)}, got a "
                          f"{type(data).__name__} (the output*.json files of LLM-Culture hold the results)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise FormatError(f"{path}: missing key(s) {', '.join(missing)}; an LLM-Culture output file has "
                           f"adjacency_matrix, prompt_init, prompt_update, personality_list, stories")
    adjacency, stories = data["adjacency_matrix"], data["stories"]
    n = len(adjacency)
    if n == 0 or any(not isinstance(row, list) or len(row) != n for row in adjacency):
        raise FormatError(f"{path}: adjacency_matrix must be a non-empty square list of lists")
    if not isinstance(stories, list) or not stories:
        raise FormatError(f"{path}: stories must be a non-empty list of generations")
    while len(stories) > 1 and stories[-1] == []:  # a chain's generations after its last agent
        stories = stories[:-1]
    chain = n > 1 and all(isinstance(g, list) and len(g) == 1 for g in stories)
    if chain and len(stories) > n:
        raise FormatError(f"{path}: stories has {len(stories)} generations of one story, more than the chain's "
                          f"{n} agents")
    for g, generation in enumerate(stories):
        if not isinstance(generation, list) or (len(generation) != n and not chain):
            raise FormatError(f"{path}: stories[{g}] has {len(generation) if isinstance(generation, list) else 'no'} "
                               f"stories, expected one per agent ({n}), or one per generation in a chain")
    for g, generation in enumerate(stories):
        for k, story in enumerate(generation):
            if story is not None and not isinstance(story, str):
                raise FormatError(f"{path}: stories[{g}][{k}] must be a story (a string), got {_shown(story)}")
    _check_fields(path, data, n)
    return {**data, "stories": stories, "chain": chain}


def import_llm_culture(path: str | Path, out: str | Path, run_id: str | None = None) -> RunDir:
    """Write one run folder for an LLM-Culture result file and return it."""
    path = Path(path)
    data = _load(path)
    adjacency = data["adjacency_matrix"]
    n = len(adjacency)
    run = RunDir(Path(out) / (run_id or f"llm-culture-{path.stem}"))
    if run.exists():
        raise RunError(f"{run.path} already holds a run")
    personalities = list(data.get("personality_list") or [""] * n)
    personalities = [(p or "").strip() or "unspecified" for p in personalities] + ["unspecified"] * n
    update_prompt = " ".join(data.get("prompt_update") or [])
    operation = "combine" if "combin" in update_prompt.lower() else "transform"
    # adjacency[i][j] != 0: i and j are linked; agent j reads agent i's story
    sources = {j: [i for i in range(n) if adjacency[i][j] and i != j] for j in range(n)}
    run.path.mkdir(parents=True, exist_ok=True)
    chain = data["chain"]
    for g, generation in enumerate(data["stories"]):
        step = g + 1
        rows = []
        for k, story in enumerate(generation):
            # a chain's generation g is agent g's story, written from agent g-1's
            agent = g if chain else k
            text = story if isinstance(story, str) and story.strip() else None
            if g == 0:
                parents = []
            else:
                parents = [f"s{step - 1}-a{g - 1}"] if chain else [f"s{step - 1}-a{i}" for i in sources[agent]]
            rows.append({
                "run_id": run.run_id, "step": step, "agent_id": agent, "idea_id": f"s{step}-a{agent}",
                "text": text, "parent_ids": parents, "operation": "create" if g == 0 else operation,
                "source": "llm", "personality": personalities[agent], "model": "imported", "seed": None,
                "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0, "cached": False, "retries": 0,
                "error": None if text else "empty story in the imported file",
            })
        run.write_step(step, rows, [])  # the exact messages were not recorded by LLM-Culture
    run.write_table("agents", pl.DataFrame({
        "agent_id": list(range(n)), "personality": personalities[:n], "community": [None] * n,
        "in_degree": [len(sources[j]) for j in range(n)],
        "chain_position": list(range(n)) if chain else [None] * n,
    }, schema={"agent_id": pl.Int64, "personality": pl.String, "community": pl.Int64,
               "in_degree": pl.Int64, "chain_position": pl.Int64}))
    run.write_table("edges", pl.DataFrame(
        [{"source": i, "target": j} for j in range(n) for i in sources[j]],
        schema={"source": pl.Int64, "target": pl.Int64}))
    run.compact()
    ideas = run.ideas()
    generations = len(data["stories"])
    run.write_manifest(Manifest(
        run_id=run.run_id, kind="culture", name=path.stem, status="done", scenario=None,
        imported_from={"format": "llm-culture", "file": str(path.resolve()), "shape": "chain" if chain else "network",
                       "prompt_init": data.get("prompt_init"), "prompt_update": data.get("prompt_update")},
        steps_total=generations, first_step=1, steps_completed=generations,
        counts=Counts(ideas=int(ideas["text"].is_not_null().sum()), failures=int(ideas["error"].is_not_null().sum())),
    ).as_json())
    return run

