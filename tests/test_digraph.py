"""compiler/digraph.py against networkx, the library it stands in for at start-up, on
random directed graphs (self-loops, cycles and unreachable nodes included)."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpc.compiler.digraph import (
    descendants,
    dfs_postorder,
    edges,
    strongly_connected_components,
)


@st.composite
def graphs(draw: st.DrawFn) -> dict[int, list[int]]:
    n = draw(st.integers(1, 30))
    return {u: draw(st.lists(st.integers(0, n - 1), max_size=4, unique=True))
            for u in range(n)}


def as_networkx(graph: dict[int, list[int]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(graph)
    g.add_edges_from(edges(graph))
    return g


@settings(max_examples=300, deadline=None)
@given(graph=graphs())
def test_as_networkx_computes(graph: dict[int, list[int]]) -> None:
    g = as_networkx(graph)
    assert sorted(edges(graph)) == sorted(g.edges)
    assert descendants(graph, 0) == nx.descendants(g, 0)
    assert dfs_postorder(graph, 0) == list(nx.dfs_postorder_nodes(g, 0))
    ours = sorted(sorted(c) for c in strongly_connected_components(graph))
    assert ours == sorted(sorted(c) for c in nx.strongly_connected_components(g))


def test_a_long_chain_needs_no_recursion() -> None:
    chain = {i: [i + 1] for i in range(50_000)} | {50_000: [0]}
    (component,) = strongly_connected_components(chain)
    assert len(component) == 50_001
    assert dfs_postorder(chain, 0)[0] == 50_000
    assert len(descendants(chain, 0)) == 50_000
