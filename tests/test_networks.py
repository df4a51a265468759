"""Tests for culturesim.networks: shapes match closed forms, seeding replays, bad input is named."""

from math import comb

import networkx as nx
import numpy as np
import pytest

from culturesim.networks import MAX_EDGES, TOPOLOGIES, NetworkError, build_network, describe, estimate_edges


def build(topology, n, params=None, seed=0, **kwargs):
    return build_network(topology, n, params or {}, rng=np.random.default_rng(seed), **kwargs)


def edge_set(graph):
    return {frozenset(e) if not graph.is_directed() else e for e in graph.edges()}


# (topology, n, params, expected edge count)
CLOSED_FORMS = [
    ("chain", 10, {}, 9),
    ("chain", 12, {"chains": 3}, 12 - 3),
    ("ring", 10, {}, 10),
    ("ring", 11, {"k": 3}, 11 * 3),
    ("complete", 7, {}, 7 * 6 // 2),
    ("complete", 1, {}, 0),
    ("grid", 12, {"rows": 3, "cols": 4}, 3 * 3 + 4 * 2),
    ("grid", 12, {"rows": 3, "cols": 4, "periodic": True}, 2 * 12),
    ("small_world", 20, {"k": 4, "p": 0.3}, 20 * 4 // 2),
    ("scale_free", 30, {"m": 3}, (30 - 3) * 3),
    ("erdos_renyi", 9, {"p": 0.0}, 0),
    ("erdos_renyi", 9, {"p": 1.0}, 9 * 8 // 2),
    ("caveman", 12, {"cliques": 3, "clique_size": 4}, 3 * comb(4, 2)),
    ("connected_caveman", 12, {"cliques": 3, "clique_size": 4}, 3 * comb(4, 2)),
    ("sbm", 9, {"sizes": [4, 5], "p": [[1, 0], [0, 1]]}, comb(4, 2) + comb(5, 2)),
    ("sbm", 9, {"sizes": [4, 5], "p": [[0, 1], [1, 0]]}, 4 * 5),
    ("star", 8, {}, 7),
    ("star", 1, {}, 0),
]


@pytest.mark.parametrize("topology,n,params,edges", CLOSED_FORMS)
def test_closed_form_sizes(topology, n, params, edges):
    graph = build(topology, n, params)
    assert sorted(graph.nodes) == list(range(n))
    assert graph.number_of_edges() == edges
    assert not graph.is_directed()
    assert nx.number_of_selfloops(graph) == 0
    assert graph.graph["topology"] == topology
    assert graph.graph["params"] == params


def test_every_topology_is_covered():
    covered = {t for t, *_ in CLOSED_FORMS} | {"edgelist"}
    assert covered == set(TOPOLOGIES)


def test_chain_is_numbered_chain_by_chain():
    graph = build("chain", 6, {"chains": 2})
    assert edge_set(graph) == {frozenset(e) for e in [(0, 1), (1, 2), (3, 4), (4, 5)]}
    assert [graph.nodes[i]["community"] for i in range(6)] == [0, 0, 0, 1, 1, 1]


def test_grid_is_row_major():
    graph = build("grid", 6, {"rows": 2, "cols": 3})
    assert graph.has_edge(0, 1) and graph.has_edge(0, 3) and not graph.has_edge(2, 3)


def test_star_hub_is_zero():
    graph = build("star", 5)
    assert graph.degree(0) == 4


@pytest.mark.parametrize("topology", ["caveman", "connected_caveman"])
def test_caveman_community_is_clique_index(topology):
    graph = build(topology, 6, {"cliques": 2, "clique_size": 3})
    assert [graph.nodes[i]["community"] for i in range(6)] == [0, 0, 0, 1, 1, 1]
    assert nx.is_connected(graph) == (topology == "connected_caveman")


@pytest.mark.parametrize("cliques,size", [(1, 3), (1, 5), (2, 3), (5, 4)])
def test_connected_caveman_is_connected_with_closed_form_edges(cliques, size):
    graph = build("connected_caveman", cliques * size, {"cliques": cliques, "clique_size": size})
    assert nx.is_connected(graph)
    assert graph.number_of_edges() == cliques * comb(size, 2)


def test_sbm_community_is_block_index():
    graph = build("sbm", 5, {"sizes": [2, 3], "p": [[0.5, 0.1], [0.1, 0.5]]})
    assert [graph.nodes[i]["community"] for i in range(5)] == [0, 0, 1, 1, 1]


RANDOM = [
    ("small_world", {"k": 4, "p": 0.5}),
    ("scale_free", {"m": 2}),
    ("erdos_renyi", {"p": 0.2}),
    ("sbm", {"sizes": [20, 20], "p": [[0.3, 0.05], [0.05, 0.3]]}),
]


@pytest.mark.parametrize("topology,params", RANDOM)
def test_seed_replays_and_varies(topology, params):
    first = edge_set(build(topology, 40, params, seed=1))
    assert first == edge_set(build(topology, 40, params, seed=1))
    assert first != edge_set(build(topology, 40, params, seed=2))


def test_rng_advances_the_same_for_deterministic_topologies():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    build_network("ring", 10, {}, rng=rng_a)
    build_network("erdos_renyi", 10, {"p": 0.5}, rng=rng_b)
    assert rng_a.integers(1000) == rng_b.integers(1000)


def test_directed_symmetrises_undirected_topologies():
    graph = build("ring", 10, {"k": 2}, directed=True)
    assert graph.is_directed()
    assert graph.number_of_edges() == 2 * 10 * 2
    assert all(graph.has_edge(v, u) for u, v in graph.edges)


def test_directed_chain_points_forward():
    graph = build("chain", 6, {"chains": 2}, directed=True)
    assert set(graph.edges) == {(0, 1), (1, 2), (3, 4), (4, 5)}


def test_directed_star_has_both_directions():
    graph = build("star", 4, directed=True)
    assert set(graph.edges) == {(0, i) for i in (1, 2, 3)} | {(i, 0) for i in (1, 2, 3)}


def test_directed_sbm_allows_asymmetric_p():
    graph = build("sbm", 6, {"sizes": [3, 3], "p": [[0, 1], [0, 0]]}, directed=True)
    assert set(graph.edges) == {(u, v) for u in range(3) for v in range(3, 6)}


def test_self_loops_option():
    graph = build("complete", 5, self_loops=True)
    assert nx.number_of_selfloops(graph) == 5
    assert graph.number_of_edges() == 10 + 5
    directed = build("chain", 4, directed=True, self_loops=True)
    assert set(nx.selfloop_edges(directed)) == {(i, i) for i in range(4)}


@pytest.mark.parametrize(
    "topology,n,params,needle",
    [
        ("ring", 10, {"k": 5}, "'k'"),  # 2k < n violated
        ("ring", 10, {"k": 0}, "'k'"),
        ("ring", 10, {"k": 1.5}, "'k'"),
        ("ring", 10, {"k": True}, "'k'"),
        ("ring", 10, {"kk": 1}, "'kk'"),  # unknown param
        ("ring", 0, {}, "n=0"),
        ("complete", -3, {}, "n=-3"),
        ("chain", 10, {"chains": 3}, "'chains'"),
        ("grid", 12, {"rows": 3}, "'cols'"),  # missing
        ("grid", 12, {"rows": 3, "cols": 5}, "'rows'"),
        ("grid", 12, {"rows": 3, "cols": 4, "periodic": "yes"}, "'periodic'"),
        ("small_world", 10, {"k": 3, "p": 0.1}, "'k'"),  # odd
        ("small_world", 10, {"k": 10, "p": 0.1}, "'k'"),  # k >= n
        ("small_world", 10, {"k": 4, "p": 1.5}, "'p'"),
        ("small_world", 10, {"k": 4}, "'p'"),
        ("scale_free", 10, {"m": 10}, "'m'"),
        ("erdos_renyi", 10, {"p": -0.1}, "'p'"),
        ("erdos_renyi", 10, {"p": "high"}, "'p'"),
        ("caveman", 10, {"cliques": 3, "clique_size": 3}, "'cliques'"),
        ("connected_caveman", 3, {"cliques": 3, "clique_size": 1}, "'clique_size'"),
        ("connected_caveman", 4, {"cliques": 2, "clique_size": 2}, "'clique_size'"),
        ("sbm", 10, {"sizes": [5, 4], "p": [[1, 0], [0, 1]]}, "'sizes'"),  # sum
        ("sbm", 10, {"sizes": [5, 5.0], "p": [[1, 0], [0, 1]]}, "'sizes'"),  # non-int
        ("sbm", 10, {"sizes": [5, 5], "p": [[1, 0]]}, "'p'"),  # not square
        ("sbm", 10, {"sizes": [5, 5], "p": [[1, 2], [2, 1]]}, "'p'"),  # range
        ("sbm", 10, {"sizes": [5, 5], "p": [[1, 0.2], [0.1, 1]]}, "'p'"),  # asymmetric
        ("star", 5, {"hub": 1}, "'hub'"),
        ("edgelist", 5, {}, "'path'"),
    ],
)
def test_bad_input_names_the_parameter(topology, n, params, needle):
    with pytest.raises(NetworkError) as info:
        build(topology, n, params)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_unknown_topology_suggests_and_lists():
    with pytest.raises(NetworkError) as info:
        build("smal_world", 10)
    message = str(info.value)
    assert "did you mean 'small_world'" in message
    assert all(t in message for t in TOPOLOGIES)


def test_unknown_param_suggests_close_name():
    with pytest.raises(NetworkError, match="did you mean 'clique_size'"):
        build("caveman", 6, {"cliques": 2, "cliquesize": 3})


def test_network_error_is_value_error():
    assert issubclass(NetworkError, ValueError)


def test_describe_is_one_line_listing_params():
    for topology in TOPOLOGIES:
        assert "\n" not in describe(topology)
    assert "rows" in describe("grid") and "periodic" in describe("grid")
    with pytest.raises(NetworkError):
        describe("nope")


def write(tmp_path, text, name="net.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_edgelist_csv_with_header(tmp_path):
    write(tmp_path, "source,target\nbob,alice\nalice,carol\n\n# comment\ncarol,bob\n")
    graph = build("edgelist", 3, {"path": "net.csv"}, base_dir=tmp_path)
    assert [graph.nodes[i]["label"] for i in range(3)] == ["bob", "alice", "carol"]
    assert edge_set(graph) == {frozenset(e) for e in [(0, 1), (1, 2), (2, 0)]}
    assert graph.graph["topology"] == "edgelist"


def test_edgelist_whitespace_directed_and_padding(tmp_path):
    path = write(tmp_path, "1 2\n2 3\n3\t3\n", name="net.txt")
    graph = build("edgelist", 5, {"path": str(path), "n": 3}, directed=True)
    assert set(graph.edges) == {(0, 1), (1, 2)}  # self loop dropped, direction kept
    assert sorted(graph.nodes) == list(range(5))
    assert graph.nodes[2]["label"] == "3" and graph.nodes[4]["label"] is None


def test_edgelist_missing_file(tmp_path):
    with pytest.raises(NetworkError, match="'path'.*not found"):
        build("edgelist", 3, {"path": "absent.csv"}, base_dir=tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n", "source,target\n"])
def test_edgelist_empty_file(tmp_path, text):
    write(tmp_path, text)
    with pytest.raises(NetworkError, match="'path'.*empty"):
        build("edgelist", 3, {"path": "net.csv"}, base_dir=tmp_path)


@pytest.mark.parametrize("bad", ["a,b,c", "a", "a b c"])
def test_edgelist_bad_line_reports_line_number(tmp_path, bad):
    write(tmp_path, f"a,b\nb,c\n{bad}\n")
    with pytest.raises(NetworkError, match="line 3"):
        build("edgelist", 5, {"path": "net.csv"}, base_dir=tmp_path)


def test_edgelist_nodes_beyond_n(tmp_path):
    write(tmp_path, "a,b\nb,c\nc,d\n")
    with pytest.raises(NetworkError, match="'d' on line 3 is beyond n=3"):
        build("edgelist", 3, {"path": "net.csv"}, base_dir=tmp_path)


def test_edgelist_param_n_must_match(tmp_path):
    write(tmp_path, "a,b\nb,c\n")
    with pytest.raises(NetworkError, match="'n'=4"):
        build("edgelist", 5, {"path": "net.csv", "n": 4}, base_dir=tmp_path)


# ---------------------------------------------------------------- size estimated before building (issue 18)


@pytest.mark.parametrize("topology,n,params", [
    ("complete", 30, {}), ("chain", 30, {"chains": 3}), ("ring", 30, {"k": 3}), ("star", 30, {}),
    ("grid", 30, {"rows": 5, "cols": 6, "periodic": True}), ("small_world", 30, {"k": 4, "p": 0.3}),
    ("scale_free", 30, {"m": 3}), ("caveman", 30, {"cliques": 5, "clique_size": 6}),
    ("connected_caveman", 30, {"cliques": 5, "clique_size": 6}),
])
def test_edge_estimate_is_at_least_what_is_built(topology, n, params):
    graph = build_network(topology, n, params, rng=np.random.default_rng(0))
    assert graph.number_of_edges() <= estimate_edges(topology, n, params)


def test_edge_estimate_of_random_topologies_is_their_expectation():
    assert estimate_edges("erdos_renyi", 1000, {"p": 0.1}) == pytest.approx(0.1 * 1000 * 999 / 2)
    assert estimate_edges("sbm", 20, {"sizes": [10, 10], "p": [[1, 0.5], [0.5, 1]]}) == 45 + 45 + 50


@pytest.mark.parametrize("topology,n,params", [
    ("complete", 20_000, {}), ("erdos_renyi", 100_000, {"p": 0.5}), ("ring", 1_000_000, {"k": 100}),
    ("sbm", 20_000, {"sizes": [10_000, 10_000], "p": [[1, 1], [1, 1]]}),
])
def test_too_many_edges_are_refused_before_building(topology, n, params, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("nothing may be built")

    monkeypatch.setattr(nx, "complete_graph", never)
    monkeypatch.setattr(nx, "gnp_random_graph", never)
    monkeypatch.setattr(nx, "circulant_graph", never)
    monkeypatch.setattr(nx, "stochastic_block_model", never)
    with pytest.raises(NetworkError, match=f"at most {MAX_EDGES:,} are built"):
        build_network(topology, n, params, rng=np.random.default_rng(0))


def test_directed_counts_both_directions():
    assert estimate_edges("complete", 7072, {}) * 2 > MAX_EDGES  # 25,003,056 one way
    build_network("complete", 20, {}, directed=True, rng=np.random.default_rng(0))  # small: built
    with pytest.raises(NetworkError, match="50,006,112 edges"):
        build_network("complete", 7072, {}, directed=True, rng=np.random.default_rng(0))
