"""Removes nodes none of whose outputs is read by another node or the graph."""
from __future__ import annotations


def run(graph) -> bool:
    needed = set(graph.outputs)
    live = []
    for node in reversed(graph.nodes):
        if any(o and o in needed for o in node.outputs):
            live.append(node)
            needed.update(i for i in node.inputs if i)
    changed = len(live) != len(graph.nodes)
    live.reverse()
    graph.nodes = live
    graph.prune_constants()
    return changed
