"""The three directed-graph algorithms the lowering needs: reachability, a depth-first
postorder and strongly connected components.

They were networkx's. Importing networkx takes about 0.1 s, a third of the start-up budget of
a first `mlpc run PROG` (issue "On a stranger's machine": at most the onnx package's import
time plus 0.3 s), and every compile needs these, so they live here: a graph is a mapping from
each node to its successors, in order. tests/test_digraph.py checks each function against
networkx's on random graphs (networkx stays the oracle, as a test dependency).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)
Graph = Mapping[Node, Sequence[Node]]  # node -> its successors (every node is a key)


def edges(graph: Graph[Node]) -> list[tuple[Node, Node]]:
    """Every edge (u, v), in the order of the nodes and of their successors."""
    return [(u, v) for u, succ in graph.items() for v in succ]


def descendants(graph: Graph[Node], source: Node) -> set[Node]:
    """The nodes other than `source` that `source` reaches."""
    seen = {source}
    stack = [source]
    while stack:
        for child in graph[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen - {source}


def dfs_postorder(graph: Graph[Node], source: Node) -> list[Node]:
    """The nodes reachable from `source` (itself included), each after every node a
    depth-first search from it visits first (children in successor order)."""
    order: list[Node] = []
    seen = {source}
    stack: list[tuple[Node, Iterable[Node]]] = [(source, iter(graph[source]))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child not in seen:
                seen.add(child)
                stack.append((child, iter(graph[child])))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def strongly_connected_components(graph: Graph[Node]) -> list[set[Node]]:
    """The strongly connected components (Tarjan's algorithm, without recursion): two nodes
    share one exactly when each reaches the other."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    found: list[set[Node]] = []
    for root in graph:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[Node, Iterable[Node]]] = [(root, iter(graph[root]))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: set[Node] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
    return found
