"""Read result files of the LLM-Culture software (Perez et al. 2024) into a run folder.

Their ``output{seed}.json`` holds an adjacency matrix, the prompts, one personality per
agent and ``stories[generation][agent]``. Turning it into culturesim's layout lets old
studies be re-measured with `culturesim analyze` and opened in the app. The lineage is
reconstructed from the network: in LLM-Culture an agent at generation g reads the
stories its neighbours wrote at generation g-1, so those are its parents.
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
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object with keys {', '.join(REQUIRED)}")
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
    for g, generation in enumerate(stories):
        if not isinstance(generation, list) or len(generation) != n:
            raise FormatError(f"{path}: stories[{g}] has {len(generation) if isinstance(generation, list) else 'no'} "
                               f"stories, expected one per agent ({n})")
    _check_fields(path, data, n)
    return data


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
    for g, generation in enumerate(data["stories"]):
        step = g + 1
        rows = []
        for agent, story in enumerate(generation):
            text = story if isinstance(story, str) and story.strip() else None
            parents = [] if g == 0 else [f"s{step - 1}-a{i}" for i in sources[agent]]
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
        "in_degree": [len(sources[j]) for j in range(n)], "chain_position": [None] * n,
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
        imported_from={"format": "llm-culture", "file": str(path.resolve()),
                       "prompt_init": data.get("prompt_init"), "prompt_update": data.get("prompt_update")},
        steps_total=generations, first_step=1, steps_completed=generations,
        counts=Counts(ideas=int(ideas["text"].is_not_null().sum()), failures=int(ideas["error"].is_not_null().sum())),
    ).as_json())
    return run

