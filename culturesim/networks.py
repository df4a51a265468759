"""Interaction networks that a population of agents lives on.

Agents are the integer nodes ``0..n-1`` of the graph returned by
:func:`build_network`, so the simulation can index agent arrays by node id
regardless of where the topology came from. Parameters come from user
configuration, so every check raises :class:`NetworkError` with a one-line
message naming the parameter, the offending value and what is allowed.
"""

from __future__ import annotations

import csv
import difflib
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

__all__ = ["MAX_EDGES", "NetworkError", "TOPOLOGIES", "build_network", "describe", "estimate_edges"]


class NetworkError(ValueError):
    """Bad network parameters; message says what, which parameter, what is allowed."""


_REQUIRED = object()

# topology -> {param: (default or _REQUIRED, what is allowed)}. Single source of
# truth for unknown/missing-parameter checks and for describe().
_SPECS: dict[str, dict[str, tuple[Any, str]]] = {
    "chain": {"chains": (1, "int >= 1 dividing n")},
    "ring": {"k": (1, "int neighbours each side, 1 <= k and 2*k < n")},
    "complete": {},
    "grid": {
        "rows": (_REQUIRED, "int >= 1, rows*cols == n"),
        "cols": (_REQUIRED, "int >= 1, rows*cols == n"),
        "periodic": (False, "bool"),
    },
    "small_world": {
        "k": (_REQUIRED, "even int, 2 <= k < n"),
        "p": (_REQUIRED, "rewiring probability in [0, 1]"),
    },
    "scale_free": {"m": (_REQUIRED, "int, 1 <= m < n")},
    "erdos_renyi": {"p": (_REQUIRED, "edge probability in [0, 1]")},
    "caveman": {
        "cliques": (_REQUIRED, "int >= 1, cliques*clique_size == n"),
        "clique_size": (_REQUIRED, "int >= 1, cliques*clique_size == n"),
    },
    "connected_caveman": {
        "cliques": (_REQUIRED, "int >= 1, cliques*clique_size == n"),
        "clique_size": (_REQUIRED, "int >= 3, cliques*clique_size == n"),
    },
    "sbm": {
        "sizes": (_REQUIRED, "list of ints >= 1 summing to n"),
        "p": (_REQUIRED, "square matrix of probabilities in [0, 1], symmetric unless directed"),
    },
    "star": {},
    "edgelist": {
        "path": (_REQUIRED, "CSV/whitespace file of source,target lines"),
        "n": (None, "int, must equal the number of nodes in the file"),
    },
}

TOPOLOGIES: tuple[str, ...] = tuple(_SPECS)

# the parameters each topology reads as file paths: confined with the scenario's other paths
PATH_PARAMS: dict[str, tuple[str, ...]] = {"edgelist": ("path",)}


def _check_topology(topology: Any) -> str:
    if topology in _SPECS:
        return topology
    hint = difflib.get_close_matches(str(topology), TOPOLOGIES, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise NetworkError(
        f"unknown topology {topology!r}{did_you_mean}; allowed: {', '.join(TOPOLOGIES)}"
    )


def describe(topology: str) -> str:
    """One line per topology, so error messages can show the whole valid parameter set."""
    spec = _SPECS[_check_topology(topology)]
    if not spec:
        return f"{topology}: no parameters"
    parts = []
    for name, (default, allowed) in spec.items():
        if default is _REQUIRED:
            parts.append(f"{name} (required; {allowed})")
        else:
            parts.append(f"{name} (default {default!r}; {allowed})")
    return f"{topology}: " + ", ".join(parts)


class _Params:
    """Typed access to one topology's params so each check names its parameter."""

    def __init__(self, topology: str, params: Mapping[str, Any]):
        self.topology = topology
        self.params = params
        spec = _SPECS[topology]
        for name in params:
            if name not in spec:
                hint = difflib.get_close_matches(str(name), list(spec), n=1)
                did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise NetworkError(
                    f"unknown parameter {name!r} for topology {topology!r}{did_you_mean}; "
                    f"allowed: {', '.join(spec) or 'none'}"
                )
        for name, (default, _) in spec.items():
            if default is _REQUIRED and name not in params:
                raise NetworkError(f"missing required parameter {name!r}; {describe(topology)}")

    def fail(self, name: str, value: Any, allowed: str) -> NetworkError:
        return NetworkError(f"{self.topology}: parameter {name!r}={value!r} is invalid; {allowed}")

    def get(self, name: str) -> Any:
        return self.params.get(name, _SPECS[self.topology][name][0])

    def integer(self, name: str, lo: int = 1, hi: int | None = None, allowed: str = "") -> int:
        """Integer in [lo, hi]; bools and integral floats are rejected, they signal a typo."""
        value = self.get(name)
        allowed = allowed or _SPECS[self.topology][name][1]
        if not _is_int(value) or value < lo or (hi is not None and value > hi):
            raise self.fail(name, value, f"must be {allowed}")
        return int(value)

    def probability(self, name: str) -> float:
        value = self.get(name)
        if not _is_prob(value):
            raise self.fail(name, value, "must be a probability in [0, 1]")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if not isinstance(value, (bool, np.bool_)):
            raise self.fail(name, value, "must be true or false")
        return bool(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_prob(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and 0.0 <= float(value) <= 1.0
    )


def _with_community(graph: nx.Graph, block_size: int) -> nx.Graph:
    nx.set_node_attributes(graph, {i: i // block_size for i in graph}, "community")
    return graph


def _chain(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    chains = p.integer("chains", hi=n)
    if n % chains:
        raise p.fail("chains", chains, f"must divide n={n} (chains of equal length)")
    length = n // chains
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(n))
    for start in range(0, n, length):
        nx.add_path(graph, range(start, start + length))
    return _with_community(graph, length)


def _ring(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    k = p.integer("k", hi=(n - 1) // 2, allowed=f"an int with 1 <= k and 2*k < n={n}")
    return nx.circulant_graph(n, range(1, k + 1))


def _grid(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    rows, cols, periodic = p.integer("rows"), p.integer("cols"), p.flag("periodic")
    if rows * cols != n:
        raise p.fail("rows", rows, f"rows*cols must equal n={n}, got {rows}*{cols}={rows * cols}")
    graph = nx.grid_2d_graph(rows, cols, periodic=periodic)
    return nx.relabel_nodes(graph, {(r, c): r * cols + c for r, c in graph})


def _small_world(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    k = p.integer("k", lo=2, hi=n - 1, allowed=f"an even int with 2 <= k < n={n}")
    if k % 2:
        raise p.fail("k", k, f"must be an even int with 2 <= k < n={n}")
    prob = p.probability("p")
    try:
        return nx.connected_watts_strogatz_graph(n, k, prob, tries=100, seed=seed)
    except nx.NetworkXError as exc:
        raise p.fail("p", prob, f"no connected graph found in 100 tries ({exc})") from None


def _scale_free(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    m = p.integer("m", hi=n - 1, allowed=f"an int with 1 <= m < n={n}")
    return nx.barabasi_albert_graph(n, m, seed=seed)


def _erdos_renyi(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    return nx.gnp_random_graph(n, p.probability("p"), seed=seed)


def _cliques(n: int, p: _Params) -> tuple[int, int]:
    cliques, size = p.integer("cliques"), p.integer("clique_size")
    if cliques * size != n:
        raise p.fail(
            "cliques", cliques, f"cliques*clique_size must equal n={n}, got {cliques}*{size}"
        )
    return cliques, size


def _caveman(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    cliques, size = _cliques(n, p)
    return _with_community(nx.caveman_graph(cliques, size), size)


def _connected_caveman(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    cliques, size = _cliques(n, p)
    if size < 3:
        # networkx rewires one edge per clique; with pairs that disconnects them.
        raise p.fail("clique_size", size, "must be an int >= 3 for connected_caveman")
    if cliques == 1:  # a lone clique is already connected; rewiring would only drop an edge
        return _with_community(nx.caveman_graph(1, size), size)
    return _with_community(nx.connected_caveman_graph(cliques, size), size)


def _sbm(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    sizes = p.get("sizes")
    if (
        isinstance(sizes, (str, bytes))
        or not hasattr(sizes, "__len__")
        or len(sizes) == 0
        or not all(_is_int(s) and s >= 1 for s in sizes)
    ):
        raise p.fail("sizes", sizes, "must be a non-empty list of ints >= 1")
    if sum(sizes) != n:
        raise p.fail("sizes", sizes, f"must sum to n={n}, got {sum(sizes)}")
    probs = p.get("p")
    nb = len(sizes)
    try:
        matrix = [list(row) for row in probs]
    except TypeError:
        matrix = []
    if len(matrix) != nb or any(len(row) != nb for row in matrix):
        raise p.fail("p", probs, f"must be a {nb}x{nb} matrix (one row and column per block)")
    if not all(_is_prob(x) for row in matrix for x in row):
        raise p.fail("p", probs, "entries must be probabilities in [0, 1]")
    if not directed and any(matrix[i][j] != matrix[j][i] for i in range(nb) for j in range(i)):
        raise p.fail("p", probs, "must be symmetric for an undirected network")
    graph = nx.stochastic_block_model(
        [int(s) for s in sizes], [[float(x) for x in row] for row in matrix],
        seed=seed, directed=directed,
    )
    community = {v: b for v, b in graph.nodes(data="block")}
    nx.set_node_attributes(graph, community, "community")
    return graph


def _star(n: int, p: _Params, seed: int, directed: bool) -> nx.Graph:
    return nx.star_graph(n - 1)


_HEADERS = {("source", "target"), ("from", "to"), ("src", "dst"), ("u", "v")}
_HEADER_WORDS = {"source", "target", "from", "to", "src", "dst"}  # not u, v: plausible node names
# what spreadsheets and pandas write for an empty cell
_MISSING = {"", "nan", "none", "null", "na", "n/a", "<na>", "#n/a"}


def _read_edges(path: Path, raw: str, p: _Params) -> list[tuple[str, str, int]]:
    """(source, target, line) of each edge line; every problem named by its line."""
    edges: list[tuple[str, str, int]] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                if "," in text:
                    fields = [f.strip() for f in next(csv.reader([text]))]
                else:
                    fields = text.split()
                if len(fields) != 2:
                    raise p.fail(
                        "path", str(raw),
                        f"line {lineno} has {len(fields)} fields, expected exactly 2 (source,target)",
                    )
                names = tuple(f.lower() for f in fields)
                if not edges and names in _HEADERS:
                    continue
                if not edges and set(names) & _HEADER_WORDS:
                    raise p.fail("path", str(raw), f"line {lineno}: header {','.join(fields)!r} is not a pair of "
                                 f"columns source,target (or from,to / src,dst / u,v)")
                for name, value in zip(("source", "target"), fields, strict=True):
                    if value.lower() in _MISSING:
                        raise p.fail("path", str(raw), f"line {lineno}: {name} is missing ({value!r})")
                edges.append((fields[0], fields[1], lineno))
                if len(edges) > MAX_EDGES:
                    raise p.fail("path", str(raw), f"more than {MAX_EDGES:,} edges (line {lineno}); "
                                 f"at most {MAX_EDGES:,} are built")
    except UnicodeDecodeError as exc:
        raise p.fail("path", str(raw), f"not a UTF-8 text file (byte {exc.object[exc.start]:#x} "
                     f"at offset {exc.start})") from None
    except OSError as exc:
        raise p.fail("path", str(raw), f"cannot read {path}: {exc.strerror or exc}") from None
    _check_id_types(edges, raw, p)
    return edges


def _number_kind(label: str) -> str | None:
    try:
        int(label)
        return "int"
    except ValueError:
        pass
    try:
        float(label)
        return "decimal"
    except ValueError:
        return None


def _check_id_types(edges: list[tuple[str, str, int]], raw: str, p: _Params) -> None:
    """Integer ids next to decimal ones ("1" and "1.0", as pandas writes ids of a column
    that held a NaN) would silently become different agents."""
    first: dict[str, tuple[str, int]] = {}
    for source, target, lineno in edges:
        for label in (source, target):
            kind = _number_kind(label)
            if kind:
                first.setdefault(kind, (label, lineno))
    if len(first) == 2:
        (i_label, i_line), (d_label, d_line) = first["int"], first["decimal"]
        raise p.fail("path", str(raw), f"node ids mix integers ({i_label!r}, line {i_line}) and decimals "
                     f"({d_label!r}, line {d_line}); write every id the same way")


def _edgelist(
    n: int, p: _Params, seed: int, directed: bool, base_dir: Path | None
) -> nx.Graph:
    """Nodes are numbered by first appearance so agent ids are stable for a given file.

    Nodes of the population that the file never mentions become isolated agents
    (``label`` None), which lets a file describe only the connected part.
    """
    raw = p.get("path")
    if not isinstance(raw, (str, os.PathLike)):
        raise p.fail("path", raw, "must be a file path string")
    path = Path(raw)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise p.fail("path", str(raw), f"file not found: {path}")

    edges = _read_edges(path, raw, p)
    if not edges:
        raise p.fail("path", str(raw), "file is empty: no source,target lines")

    ids: dict[str, int] = {}
    for source, target, lineno in edges:
        for label in (source, target):
            if label not in ids:
                if len(ids) >= n:
                    raise p.fail(
                        "path", str(raw),
                        f"node {label!r} on line {lineno} is beyond n={n} "
                        f"(file has more than {n} distinct nodes)",
                    )
                ids[label] = len(ids)
    expected = p.get("n")
    if expected is not None and (not _is_int(expected) or expected != len(ids)):
        raise p.fail("n", expected, f"must equal the number of nodes in the file ({len(ids)})")

    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(n), label=None)
    nx.set_node_attributes(graph, {i: label for label, i in ids.items()}, "label")
    graph.add_edges_from((ids[s], ids[t]) for s, t, _ in edges)
    return graph


MAX_EDGES = 50_000_000  # networkx holds an edge in a few hundred bytes: this is already tens of GB


def _num(value: Any, lo: float = 0.0, hi: float | None = None) -> float | None:
    """A parameter as a number for the estimate, clipped to what the builder would accept;
    None when it is not a number (the builder then names the bad parameter)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        return None
    try:
        x = float(value)
    except OverflowError:
        x = float("inf")
    if x != x:
        return None
    x = max(x, lo)
    return min(x, hi) if hi is not None else x


def estimate_edges(topology: str, n: int, params: Mapping[str, Any]) -> float:
    """Edges the topology would build on ``n`` agents, from its parameters alone (nothing built).

    An upper estimate for the random topologies (their expected count); 0 for an edge list,
    whose file is counted as it is read.
    """
    get = params.get
    if topology == "complete":
        return n * (n - 1) / 2
    if topology in ("chain", "star"):
        return float(n)
    if topology == "ring":
        k = _num(get("k", 1), 1, max((n - 1) // 2, 1)) or 1
        return n * k
    if topology == "grid":
        return 2.0 * n
    if topology == "small_world":
        k = _num(get("k"), 2, max(n - 1, 2)) or 2
        return n * k / 2
    if topology == "scale_free":
        m = _num(get("m"), 1, max(n - 1, 1)) or 1
        return m * n
    if topology == "erdos_renyi":
        prob = _num(get("p"), 0.0, 1.0)
        return (1.0 if prob is None else prob) * n * (n - 1) / 2
    if topology in ("caveman", "connected_caveman"):
        size = _num(get("clique_size"), 1, n) or 1
        return n * (size - 1) / 2 + n
    if topology == "sbm":
        sizes, probs = get("sizes"), get("p")
        try:
            sizes = [_num(s, 0, n) or 0 for s in sizes]
            return sum((sizes[i] * sizes[j] if i != j else sizes[i] * (sizes[i] - 1) / 2)
                       * (_num(probs[i][j], 0.0, 1.0) or 0.0)
                       for i in range(len(sizes)) for j in range(i, len(sizes)))
        except (TypeError, IndexError, KeyError):
            return 0.0  # malformed: the builder says what is wrong
    return 0.0


def _check_size(topology: str, n: int, params: Mapping[str, Any], directed: bool) -> None:
    edges = estimate_edges(topology, n, params) * (2 if directed else 1)
    if edges > MAX_EDGES:
        raise NetworkError(
            f"{topology} on {n:,} agents would have about {edges:,.0f} edges; at most {MAX_EDGES:,} are built "
            f"(use fewer agents or a sparser topology)"
        )


_BUILDERS = {
    "chain": _chain,
    "ring": _ring,
    "complete": lambda n, p, seed, directed: nx.complete_graph(n),
    "grid": _grid,
    "small_world": _small_world,
    "scale_free": _scale_free,
    "erdos_renyi": _erdos_renyi,
    "caveman": _caveman,
    "connected_caveman": _connected_caveman,
    "sbm": _sbm,
    "star": _star,
}

# Topologies whose direction is intrinsic, so they are built directed rather than
# symmetrised: a chain transmits forward, an edge list states source -> target.
_NATIVELY_DIRECTED = {"chain", "sbm", "edgelist"}


def build_network(
    topology: str,
    n: int,
    params: Mapping[str, Any] | None,
    *,
    directed: bool = False,
    self_loops: bool = False,
    rng: np.random.Generator,
    base_dir: Path | None = None,
) -> nx.Graph | nx.DiGraph:
    """Build the agents' graph; the seed comes from ``rng`` so runs replay exactly.

    A seed is drawn whatever the topology, so the caller's ``rng`` advances the
    same way and switching topology does not shift later random draws.
    """
    _check_topology(topology)
    if not _is_int(n) or n < 1:
        raise NetworkError(f"n={n!r} is invalid; number of agents must be an int >= 1")
    n = int(n)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise NetworkError(f"params for {topology!r} must be a mapping, got {params!r}")
    p = _Params(topology, params)
    seed = int(rng.integers(2**32))
    _check_size(topology, n, params, directed)

    if topology == "edgelist":
        graph = _edgelist(n, p, seed, directed, base_dir)
    else:
        graph = _BUILDERS[topology](n, p, seed, directed)
    if directed and topology not in _NATIVELY_DIRECTED:
        graph = graph.to_directed()

    graph.remove_edges_from(list(nx.selfloop_edges(graph)))
    if self_loops:
        graph.add_edges_from((i, i) for i in graph)
    graph.graph["topology"] = topology
    graph.graph["params"] = dict(params)
    return graph


COMMUNITY_TOPOLOGIES = ("chain", "caveman", "connected_caveman", "sbm")


def community_labels(topology: str, n: int, params: Mapping[str, Any]) -> list[int] | None:
    """Each node's ``community`` as :func:`build_network` labels it, without building the
    graph (so a scenario's assignments by community are checked when it is loaded); None
    for a topology without communities. Bad parameters raise :class:`NetworkError`."""
    if topology not in COMMUNITY_TOPOLOGIES:
        return None
    p = _Params(topology, params)
    if topology == "chain":
        chains = p.integer("chains", hi=n)
        if n % chains:
            raise p.fail("chains", chains, f"must divide n={n} (chains of equal length)")
        size = n // chains
    elif topology == "sbm":
        sizes = p.get("sizes")
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or not all(
                _is_int(s) and s >= 1 for s in sizes) or sum(sizes) != n:
            raise p.fail("sizes", sizes, f"must be a non-empty list of ints >= 1 summing to n={n}")
        return [b for b, size in enumerate(sizes) for _ in range(int(size))]
    else:
        _, size = _cliques(n, p)
    return [i // size for i in range(n)]


def population_graph(scenario: Any, base_dir: Path | None = None, size: int | None = None) -> nx.Graph:
    """The scenario's ``network`` block over ``size`` agents (default ``population.size``),
    seeded apart from every step's randomness (``[seed, 1]``), as every kind on a
    population network builds it."""
    from culturesim.scenario import ScenarioError

    net = scenario.network
    try:
        return build_network(
            net.topology, scenario.population.size if size is None else size, dict(net.params), directed=net.directed,
            self_loops=net.self_loops, rng=np.random.default_rng([scenario.seed, 1]), base_dir=base_dir,
        )
    except NetworkError as exc:
        raise ScenarioError([f"network: {exc}"]) from None
