"""Bad input files get one clear line per problem and exit code 2, never a traceback and
never a run folder: network edge lists (through `culturesim validate` and `culturesim run`)
and the genealogy CSVs of `culturesim price`. Scenario files have their own property
tests (test_scenario_fuzz.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturesim import cli
from culturesim.networks import NetworkError, build_network

SCENARIO = {
    "kind": "culture", "name": "net", "seed": 1, "steps": 1,
    "population": {"size": 4},
    "network": {"topology": "edgelist", "params": {"path": "edges.csv"}},
    "llm": {"model": "echo/x"},
    "output": {"run_id": "net"},
}


def edge_scenario(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / "edges.csv").write_bytes(content)
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def one_clear_line(err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), (words, lines[0])
    return lines[0]


EDGE_LISTS = [  # (file content, words the message must hold)
    (b"0\n1\n", ["line 1 has 1 fields", "source,target"]),
    (b"source,weight\n0,1\n", ["line 1", "'source,weight'", "source,target"]),
    (b"source,target\n0,1\n2,\n", ["line 3", "target is missing"]),
    (b"source,target\nnan,1\n", ["line 2", "source is missing", "'nan'"]),
    (b"from,to\n0,NULL\n", ["line 2", "target is missing"]),
    (b"source,target\n0.0,1.0\n1,2\n", ["mix integers", "'1', line 3", "'0.0', line 2"]),
    (b"source,target,weight\n0,1,0.5\n", ["line 1 has 3 fields"]),
    (b"", ["file is empty"]),
    (b"source,target\n# nothing else\n", ["file is empty"]),
    (b"\xff\xfe0\x001\n", ["not a UTF-8 text file", "0xff"]),
    (b"0,1\n1,2\n2,3\n3,4\n", ["node '4' on line 4 is beyond n=4"]),
]


@pytest.mark.parametrize("content, words", EDGE_LISTS)
def test_bad_edge_lists_are_one_clear_line_and_exit_2(tmp_path, capsys, content, words):
    path = edge_scenario(tmp_path, content)
    for argv in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out"), "-q"]):
        assert cli.main(argv) == 2
        one_clear_line(capsys.readouterr().err, "net.yaml", "edgelist", "'path'", *words)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_good_edge_list_passes_the_same_checks(tmp_path, capsys):
    path = edge_scenario(tmp_path, b"source,target\n# ring\na,b\nb,c\nc,d\nd,a\n")
    assert cli.main(["validate", str(path)]) == 0
    assert "4 agents" in capsys.readouterr().out


def test_exit_code_and_message_of_the_real_command(tmp_path):
    path = edge_scenario(tmp_path, b"source,target\n0,nan\n")
    done = subprocess.run([sys.executable, "-m", "culturesim.cli", "run", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    one_clear_line(done.stderr, "line 2: target is missing")


cells = st.sampled_from(["0", "1", "2", "3", "a", "b", "1.0", "nan", "", " ", "source", "target", "NA", "é", '"',
                         "x,y", "#", "\t"])
rows = st.lists(st.lists(cells, min_size=0, max_size=3).map(",".join), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=rows, junk=st.binary(max_size=4))
def test_any_edge_list_is_a_graph_or_one_line_network_error(tmp_path, lines, junk):
    (tmp_path / "e.csv").write_bytes(("\n".join(lines)).encode("utf-8") + junk)
    try:
        graph = build_network("edgelist", 4, {"path": "e.csv"}, rng=np.random.default_rng(0), base_dir=tmp_path,
                              directed=True)
    except NetworkError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    labels = [label for _, label in graph.nodes(data="label") if label is not None]
    assert sorted(graph.nodes) == [0, 1, 2, 3] and isinstance(graph, nx.DiGraph)
    assert all(label.strip() and label.lower() not in {"nan", "na"} for label in labels)


# --- culturesim price ------------------------------------------------------------------------
GOOD = {"parents": "id,group,trait\nA,g1,0\nB,g1,1\nC,g2,2\n", "children": "id,trait\nc1,1\nc2,2\n",
        "attributions": "child,parent,weight\nc1,A,1\nc2,B,1\n"}
PRICE_CASES = [  # (which file, content, words the message must hold)
    ("children", "", ["children file", "empty file"]),
    ("children", "id\nc1\n", ["missing column(s) trait"]),
    ("parents", "id,group,trait\n", ["no data rows"]),
    ("children", "id,trait\nc1,nan\nc2,2\n", ["line 2", "'nan'", "finite"]),
    ("children", "id,trait\nc1,\nc2,2\n", ["line 2", "trait is missing"]),
    ("children", "id,trait\nc1,true\nc2,2\n", ["line 2", "'true' is not a number"]),
    ("attributions", "child,parent,weight\nc1,A,heavy\nc2,B,1\n", ["line 2", "'heavy' is not a number"]),
    ("children", "id,trait\nc1,1,5,6\nc2,2\n", ["children file", "cannot read CSV"]),  # ragged
    ("children", 'id,trait\n"c1,1\nc2,2\n', ["children file", "cannot read CSV"]),  # unclosed quote
    ("children", "id,trait,trait\nc1,1,1\nc2,2,2\n", ["children file", "trait"]),  # which trait?
    ("children", b"\xff\xfe\x00id,trait\n\x01", ["children file"]),
]


def price_files(tmp_path: Path, which: str | None = None, content: str | bytes = "") -> list[str]:
    argv = ["price"]
    for name, text in GOOD.items():
        data = content if name == which else text
        path = tmp_path / f"{name}.csv"
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        argv += [f"--{name}", str(path)]
    return argv


def test_price_accepts_the_good_files(tmp_path, capsys):
    assert cli.main(price_files(tmp_path)) == 0
    assert "delta" in capsys.readouterr().out


@pytest.mark.parametrize("which, content, words", PRICE_CASES)
def test_bad_price_tables_are_one_clear_line_and_exit_2(tmp_path, capsys, which, content, words):
    assert cli.main(price_files(tmp_path, which, content)) == 2
    one_clear_line(capsys.readouterr().err, *words)
